"""Builds: request models and hashes, the Redis-stream queue, the process pool, ImageBuilders, the sandbox."""
