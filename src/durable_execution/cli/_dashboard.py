"""``dashboard``: the web dashboard (the optional ``dashboard`` extra), served by uvicorn.

The extra is imported only when the command runs, so the rest of the CLI works without it and
its absence is reported as the one line that says how to install it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Final

import click

from durable_execution.cli._common import CliError, Target, opened, run, storage_options
from durable_execution.cli._tables import chosen_target
from durable_execution.storage import InspectableStorage

TOKEN_ENVVAR: Final = "DURABLE_EXECUTION_DASHBOARD_TOKEN"
EXTRA_HINT: Final = (
    "the dashboard needs the 'dashboard' extra: pip install 'durable-execution[dashboard]'"
)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    if token is not None and not token.strip():
        raise CliError("--token is empty; give a long random string (or leave it out)")
    if not is_loopback(host) and token is None:
        raise CliError(
            f"refusing to serve the dashboard on {host}: any address other than loopback "
            "(127.0.0.1, ::1, localhost) needs --token (or "
            f"{TOKEN_ENVVAR}) so that only people who have it can see and cancel executions"
        )


async def _probe(target: Target) -> None:
    """Open the storage once before serving: a bad --db fails now, not on the first page."""
    async with opened(target, migrate=False, must_exist=True) as storage:
        if not isinstance(storage, InspectableStorage):
            raise CliError(f"{target.shown} does not support listing executions")


@click.command()
@storage_options()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--token",
    envvar=TOKEN_ENVVAR,
    default=None,
    help=f"Require this token on every request (needed for a non-loopback --host) "
    f"[env: {TOKEN_ENVVAR}].",
)
@click.option("--read-only", is_flag=True, help="Hide and refuse actions (cancel).")
def dashboard(
    db: str, table: str, host: str, port: int, token: str | None, read_only: bool
) -> None:
    """Serve a web dashboard: executions, their trees and errors, and cancelling them.

    Binds 127.0.0.1 by default; any other --host requires --token. Open the printed address
    (with ?token=… once when a token is set).
    """
    check_bind(host, token)
    try:
        import uvicorn

        from durable_execution.dashboard import Settings, create_app
    except ImportError as error:
        raise CliError(f"{EXTRA_HINT} ({error})") from None
    # Without --table, the demo's table (or the only one there is), as `list` and `show` do.
    target = chosen_target(Target(db, table))
    run(target, "opening the storage", _probe(target))
    app = create_app(
        Settings(db_url=db, table=table, db_shown=target.shown, token=token, read_only=read_only)
    )
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"Dashboard for {target.shown} on http://{shown_host}:{port}/")
    if token is not None:
        click.echo("Open it with ?token=<your token> once, or sign in on the page.")
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    asyncio.run(uvicorn.Server(config).serve())
