"""The ``durable-execution`` command: demo, worker and inspection of stored executions."""

from durable_execution.cli._main import cli, main

__all__ = ["cli", "main"]
