"""The three storages the model-based test compares, driven from synchronous hypothesis code.

Hypothesis state machines are synchronous, the storages are asynchronous: :class:`Backends` owns
one ``asyncio.Runner`` for a whole test, opens the SQLite and PostgreSQL storages on it once, and
runs each step's coroutine to completion. Opening a PostgreSQL pool per example would dominate
the run time, so examples are isolated by emptying the tables instead (:meth:`Backends.reset`):
a fresh in-memory storage, ``DELETE`` on the SQLite file and ``TRUNCATE`` on the PostgreSQL
table, each through a connection of its own, between (never during) transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import Final, TypeVar

import psycopg
from psycopg import sql

from durable_execution.storage import DurableStorage, InMemoryStorage, open_storage

_T = TypeVar("_T")

TABLE: Final = "model_executions"  # not the default: the custom-table path is exercised too
NAMES: Final = ("memory", "sqlite", "postgresql")


class Backends:
    """The model (memory) first, then the SQL storages, all open on one event loop."""

    def __init__(self, sqlite_path: Path, postgres_url: str) -> None:
        self._sqlite_path = sqlite_path
        self._postgres_url = postgres_url
        self._runner = asyncio.Runner()
        self._stack = contextlib.AsyncExitStack()
        self._admin: psycopg.Connection[tuple[object, ...]] | None = None
        self.storages: list[DurableStorage] = []

    def run(self, coroutine: Coroutine[object, object, _T]) -> _T:
        return self._runner.run(coroutine)

    def open(self) -> None:
        async def open_sql() -> list[DurableStorage]:
            lite = await self._stack.enter_async_context(
                open_storage(f"sqlite:///{self._sqlite_path}", table_name=TABLE)
            )
            pg = await self._stack.enter_async_context(
                open_storage(self._postgres_url, table_name=TABLE, pool_min_size=1, pool_max_size=2)
            )
            return [lite, pg]

        self.storages = [InMemoryStorage(), *self.run(open_sql())]
        self._admin = psycopg.connect(self._postgres_url, autocommit=True)

    def reset(self) -> None:
        """Empty every backend: the next example starts from nothing, whatever the last did."""
        self.storages[0] = InMemoryStorage()
        with contextlib.closing(sqlite3.connect(self._sqlite_path, timeout=30)) as lite, lite:
            lite.execute(f"DELETE FROM {TABLE}")  # TABLE is a constant identifier
        assert self._admin is not None
        self._admin.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(TABLE)))

    def close(self) -> None:
        try:
            if self._admin is not None:
                self._admin.close()
            self.run(self._stack.aclose())
        finally:
            self._runner.close()
