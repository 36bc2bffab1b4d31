"""`tidemark demo`: the whole pipeline on a real ext4 filesystem, end to end, with checks."""
