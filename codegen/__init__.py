"""Build tool: the sqlc process plugin that turns schema/ and queries/ into typed Python.

Runtime code never imports this package; ``codegen.regenerate`` rewrites
``src/durable_execution/generated/`` and ``codegen.plugin`` is what sqlc runs.
"""
