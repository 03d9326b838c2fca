"""Where a sample's executions live: a fresh, empty storage location per sample.

Every sample starts from nothing so that repeats are independent: the in-memory backend needs
no location, SQLite gets a file in a new temporary directory (removed afterwards), PostgreSQL a
new database created through an admin connection and dropped — even if a crashed worker still
holds a connection — when the sample ends.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final, Literal, TypeAlias, get_args
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from durable_execution.storage import SqliteSynchronous

Backend: TypeAlias = Literal["memory", "sqlite", "postgresql"]
BACKENDS: Final[tuple[Backend, ...]] = get_args(Backend)

DEFAULT_POSTGRES_ADMIN_URL: Final = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_ADMIN_URL_ENV: Final = "DURABLE_TEST_POSTGRES_URL"


def postgres_admin_url() -> str:
    """A URL allowed to create databases: the test/CI variable if set, else the local server."""
    return os.environ.get(POSTGRES_ADMIN_URL_ENV, DEFAULT_POSTGRES_ADMIN_URL)


@dataclass(frozen=True, slots=True)
class Target:
    """A fresh storage location: ``url`` is what ``open_storage`` (and worker processes) take.

    ``sqlite_path`` and ``postgres_conninfo`` are the same place for plain driver access (the
    floor measurement and the scale-out coordinator's progress query); ``sqlite_synchronous`` is
    the ``PRAGMA synchronous`` the URL asks for, which the floor's plain connection copies.
    """

    backend: Backend
    url: str
    sqlite_path: Path | None = None
    postgres_conninfo: str | None = None
    sqlite_synchronous: SqliteSynchronous = "full"


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database, every other part (host, user, query) kept."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


# Removals of the targets in use, so that a harness stopped by SIGTERM can still run them.
_pending_removals: dict[str, Callable[[], None]] = {}


def remove_targets_in_use() -> None:
    """Remove every target still in use now (best effort: the harness is going down)."""
    for key, remove in list(_pending_removals.items()):
        try:
            remove()
        except Exception as error:  # keep removing the others
            print(f"could not remove {key}: {error}", file=sys.stderr)
        _pending_removals.pop(key, None)


@contextmanager
def _removed_afterwards(key: str, remove: Callable[[], None]) -> Iterator[None]:
    _pending_removals[key] = remove
    try:
        yield
    finally:
        if _pending_removals.pop(key, None) is not None:
            remove()


@contextmanager
def fresh_target(
    backend: Backend, admin_url: str, sqlite_synchronous: SqliteSynchronous = "full"
) -> Iterator[Target]:
    """A fresh location for ``backend``; a SQLite URL carries ``?synchronous=normal`` when asked
    (and no parameter for FULL, so that the default is what gets measured)."""
    if backend == "memory":
        yield Target(backend, "memory://")
    elif backend == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="durable-bench-"))
        path = directory / "bench.db"
        with _removed_afterwards(str(directory), partial(shutil.rmtree, directory, True)):
            query = "" if sqlite_synchronous == "full" else f"?synchronous={sqlite_synchronous}"
            yield Target(
                backend,
                f"sqlite:///{path}{query}",
                sqlite_path=path,
                sqlite_synchronous=sqlite_synchronous,
            )
    else:
        database = f"durable_bench_{secrets.token_hex(6)}"
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        url = with_database(admin_url, database)
        with _removed_afterwards(database, partial(_drop_database, admin_url, database)):
            yield Target(backend, url, postgres_conninfo=url)


def _drop_database(admin_url: str, database: str) -> None:
    # FORCE: a worker that crashed or hangs may still be connected.
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
