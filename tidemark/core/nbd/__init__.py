"""A small NBD server (fixed newstyle, simple replies) generic over an `Export` backend.

Used by the NBD tracker (producers) and by mirror mounts (sinks); neither stage depends on the
other, both on this package.
"""
