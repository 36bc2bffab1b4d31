"""Mount: a recovery point (live, read-only or with an overlay) or a promoted mirror served over NBD."""
