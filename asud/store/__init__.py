"""Where asud keeps things: Redis (records, hashes, queue, stats) and the files store (images, logs)."""
