"""`python -m tidemark.cli`: the same as the `tidemark` console script."""

from .main import main

main()
