"""A web dashboard over an executions table: ``durable-execution dashboard`` (the
``dashboard`` extra: ``pip install 'durable-execution[dashboard]'``).

Server-rendered pages (Starlette, Jinja2, uvicorn), every asset in this package, nothing loaded
from the network. See :mod:`._security` for what it takes to reach it.
"""

from durable_execution.dashboard._app import Settings, create_app

__all__ = ["Settings", "create_app"]
