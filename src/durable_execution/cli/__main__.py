"""``python -m durable_execution.cli``: the same as the ``durable-execution`` command."""

from durable_execution.cli import main

main()
