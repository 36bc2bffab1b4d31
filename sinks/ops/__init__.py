"""One-shot operations on a mirror, one module each: revert, failover, failback, resync, verify, point requests."""
