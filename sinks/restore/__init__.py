"""Instant restore: serve a recovery point at once while it is relocated into a destination image."""
