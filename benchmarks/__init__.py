"""Reproducible benchmarks: every figure is a ratio against an anchor measured in the same run.

Run them all with `python -m benchmarks [--quick]` from the repository root. Not installed with
tidemark; the modules import `tidemark.*` like any user of the library would.
"""
