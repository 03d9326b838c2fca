"""What every command shares: the ``--db``/``--table`` options, opening storage, and errors.

Errors a user can fix (a bad URL, an unknown id, an unreachable server) leave as
:class:`CliError`: one line on stderr, exit status 1, never a traceback and never a password. Bad
option values are click's usage errors (exit status 2).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Final, TypeVar

import click

from durable_execution import DurableStorage, open_storage
from durable_execution.ids import EXECUTION_ID_PREFIX
from durable_execution.storage.table_names import DEFAULT_TABLE, validate_table_name
from durable_execution.storage.url import (
    MemoryUrl,
    SqliteUrl,
    mask_password,
    parse_storage_url,
    scrub,
)

DEFAULT_DB_URL: Final = "sqlite:///durable_execution.db"
DB_ENVVAR: Final = "DURABLE_EXECUTION_DB"
TABLE_ENVVAR: Final = "DURABLE_EXECUTION_TABLE"

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., object])


class CliError(click.ClickException):
    """A problem the user can fix, reported as ``Error: <message>`` with exit status 1."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a command's executions live: a storage URL and the table inside it."""

    url: str
    table: str

    @property
    def masked_url(self) -> str:
        return mask_password(self.url)

    @property
    def shown(self) -> str:
        """The URL as messages may show it (password masked), with a non-default table."""
        shown = self.masked_url
        return shown if self.table == DEFAULT_TABLE else f"{shown} (table {self.table})"

    @property
    def is_memory(self) -> bool:
        return isinstance(parse_storage_url(self.url), MemoryUrl)

    def command_options(self) -> str:
        """``--db … [--table …]`` naming this target in a command line shown to the user."""
        table = "" if self.table == DEFAULT_TABLE else f" --table {self.table}"
        return f"--db '{self.masked_url}'{table}"

    def describe(self, error: BaseException) -> str:
        """``error`` as one line for a user, any password in it masked."""
        text = scrub(str(error), self.url) or type(error).__name__
        return " ".join(text.split())


def _url_checker(*, allow_memory: bool) -> Callable[[click.Context, click.Parameter, str], str]:
    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        try:
            parsed = parse_storage_url(value)
        except ValueError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
        if isinstance(parsed, MemoryUrl) and not allow_memory:
            raise click.BadParameter(
                "memory:// storage lives and dies inside one process; this command needs a "
                "database that other processes can reach (sqlite:///… or postgresql://…)",
                ctx=ctx,
                param=param,
            )
        return value

    return check


def _check_table(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return validate_table_name(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


DB_HELP: Final = (
    "Storage URL: sqlite:///relative/file.db, sqlite:////absolute/file.db or "
    "postgresql://user:password@host:port/database (or a libpq key/value string)."
)
TABLE_HELP: Final = "Table holding the executions (a plain identifier)."


def storage_options(
    *, from_env: bool = True, allow_memory: bool = False, default_table: str = DEFAULT_TABLE
) -> Callable[[_F], _F]:
    """Add ``--db`` and ``--table``; the command receives them as ``db`` and ``table``.

    ``from_env`` lets ``DURABLE_EXECUTION_DB``/``DURABLE_EXECUTION_TABLE`` supply them, so a
    shell or a container sets them once for every command.
    """

    def decorate(command: _F) -> _F:
        env_note = f" [env: {TABLE_ENVVAR}]" if from_env else ""
        command = click.option(
            "--table",
            default=default_table,
            show_default=True,
            envvar=TABLE_ENVVAR if from_env else None,
            callback=_check_table,
            help=TABLE_HELP + env_note,
        )(command)
        env_note = f" [env: {DB_ENVVAR}]" if from_env else ""
        return click.option(
            "--db",
            metavar="URL",
            default=DEFAULT_DB_URL,
            show_default=True,
            envvar=DB_ENVVAR if from_env else None,
            callback=_url_checker(allow_memory=allow_memory),
            help=DB_HELP + env_note,
        )(command)

    return decorate


def check_execution_id(value: str) -> str:
    """Refuse what cannot be an execution id before asking the database about it."""
    if not value.startswith(EXECUTION_ID_PREFIX) or len(value) != len(EXECUTION_ID_PREFIX) + 24:
        raise CliError(
            f"{value!r} is not an execution id: ids look like {EXECUTION_ID_PREFIX} followed by "
            "24 letters and digits"
        )
    return value


@asynccontextmanager
async def opened(
    target: Target, *, migrate: bool, must_exist: bool = False, listen: bool = True
) -> AsyncIterator[DurableStorage]:
    """The storage ``target`` names, with failures to open it turned into :class:`CliError`.

    ``must_exist`` (commands that only read or change existing executions) makes a SQLite file
    that does not exist an error instead of creating it: a typo in a path should not look like an
    empty database. ``listen=False`` is PostgreSQL's poll-only mode (``open_storage``'s).
    """
    parsed = parse_storage_url(target.url)
    if must_exist and isinstance(parsed, SqliteUrl) and not parsed.path.exists():
        raise CliError(
            f"no SQLite database at {parsed.path} ({target.shown}); check --db, or create one "
            "with `durable-execution migrate`"
        )
    async with AsyncExitStack() as stack:
        try:
            storage = await stack.enter_async_context(
                open_storage(
                    target.url,
                    migrate=migrate,
                    table_name=target.table,
                    # Passed only when off (None: not given): the option exists for PostgreSQL
                    # URLs alone.
                    listen=None if listen else False,
                )
            )
        except Exception as error:
            text = target.describe(error)
            # Storage errors usually name the database already (password masked).
            message = text if target.masked_url in text else f"cannot open {target.shown}: {text}"
            raise CliError(message) from error
        yield storage


def failure(target: Target, action: str, error: Exception) -> CliError:
    """A :class:`CliError` for ``action`` failing against ``target``, with a hint if it helps."""
    message = f"{action} failed on {target.shown}: {target.describe(error)}"
    lowered = message.lower()
    if any(sign in lowered for sign in ("no such table", "no such column", "does not exist")):
        message += (
            "\nIs the schema created and up to date? Run: durable-execution migrate "
            f"{target.command_options()}"
        )
    return CliError(message)


def run(target: Target, action: str, work: Coroutine[object, object, _T]) -> _T:
    """Run ``work`` to completion; any unexpected failure becomes a :class:`CliError`."""
    try:
        return asyncio.run(work)
    except click.ClickException:
        raise
    except Exception as error:
        raise failure(target, action, error) from error
