"""What the daemon knows of its distributions, in memory: versions, targets, profiles, package feeds."""
