"""The NBD tracker: an NBD server in front of a raw image that publishes every write."""
