"""Moved to runner.py (issue 15); this re-export stays until tidemark/cli/process_cmd.py imports it there."""

from .runner import ProcessorOptions, ProcessorWorker

__all__ = ["ProcessorOptions", "ProcessorWorker"]
