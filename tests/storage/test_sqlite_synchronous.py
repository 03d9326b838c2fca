"""SQLite's ``PRAGMA synchronous``: FULL by default, NORMAL only when asked for.

FULL syncs the WAL at every commit, so an enqueue that returned survives a power loss or an OS
crash; NORMAL may drop the last commits then. The tests read the pragma back from every
connection the storage opens (caught by wrapping ``sqlite3.connect``, the connections themselves
are real) and through the storage's own worker, after real writes, for each way of asking: the
default, ``open_storage(sqlite_synchronous=…)``, the URL's ``?synchronous=…`` and
``SQLiteDurableStorage(synchronous=…)``. Bad values are refused before any file is created.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from durable_execution.storage import (
    DurableStorage,
    SQLiteDurableStorage,
    SqliteSynchronous,
    open_storage,
)
from durable_execution.storage.url import SqliteUrl, parse_storage_url

from ._records import all_ids, insert, record

FULL = 2  # what PRAGMA synchronous reads back
NORMAL = 1


@pytest.fixture
def opened_connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """Every connection to a database file opened during the test, whoever opened it (not the
    scratch in-memory database the schema check replays the migrations on)."""
    connections: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    # Any: sqlite3.connect's own signature, passed through unchanged.
    def recording_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = real_connect(*args, **kwargs)
        if args and args[0] != ":memory:":
            connections.append(connection)
        return connection

    monkeypatch.setattr(sqlite3, "connect", recording_connect)
    return connections


def _level(connection: sqlite3.Connection) -> int:
    row = connection.execute("PRAGMA synchronous").fetchone()
    assert row is not None
    return int(row[0])


@asynccontextmanager
async def _constructed(
    path: Path, synchronous: SqliteSynchronous | None
) -> AsyncIterator[DurableStorage]:
    storage = (
        SQLiteDurableStorage(path)
        if synchronous is None
        else SQLiteDurableStorage(path, synchronous=synchronous)
    )
    async with storage:
        await storage.migrate()
        yield storage


# How the storage is opened, given the file: (id, opener, expected level).
Opener = Callable[[Path], AbstractAsyncContextManager[DurableStorage]]
WAYS: list[tuple[str, Opener, int]] = [
    ("open_storage default", lambda p: open_storage(f"sqlite:///{p}"), FULL),
    (
        "open_storage option normal",
        lambda p: open_storage(f"sqlite:///{p}", sqlite_synchronous="normal"),
        NORMAL,
    ),
    (
        "open_storage option full",
        lambda p: open_storage(f"sqlite:///{p}", sqlite_synchronous="full"),
        FULL,
    ),
    ("URL normal", lambda p: open_storage(f"sqlite:///{p}?synchronous=normal"), NORMAL),
    ("URL full", lambda p: open_storage(f"sqlite:///{p}?synchronous=full"), FULL),
    ("constructor default", lambda p: _constructed(p, None), FULL),
    ("constructor normal", lambda p: _constructed(p, "normal"), NORMAL),
    ("constructor full", lambda p: _constructed(p, "full"), FULL),
]


@pytest.mark.parametrize(("opener", "expected"), [w[1:] for w in WAYS], ids=[w[0] for w in WAYS])
async def test_every_connection_runs_the_synchronous_level_asked_for(
    opener: Opener,
    expected: int,
    sqlite_path: Path,
    opened_connections: list[sqlite3.Connection],
) -> None:
    async with opener(sqlite_path) as storage:
        assert isinstance(storage, SQLiteDurableStorage)
        await insert(storage, record("a"), record("b"))  # real commits, on the loop or worker
        assert await all_ids(storage) == ["a", "b"]
        assert await storage.run_on_worker(_level) == expected
        assert opened_connections, "the storage opened no connection through sqlite3.connect"
        assert [_level(c) for c in opened_connections] == [expected] * len(opened_connections)


async def test_the_level_is_per_connection_not_stored_in_the_file(sqlite_path: Path) -> None:
    # A file once opened with NORMAL does not make the next default opening NORMAL.
    async with open_storage(f"sqlite:///{sqlite_path}", sqlite_synchronous="normal") as storage:
        assert isinstance(storage, SQLiteDurableStorage)
        assert await storage.run_on_worker(_level) == NORMAL
    async with open_storage(f"sqlite:///{sqlite_path}") as storage:
        assert isinstance(storage, SQLiteDurableStorage)
        assert await storage.run_on_worker(_level) == FULL


def test_the_url_parameter_is_parsed() -> None:
    assert parse_storage_url("sqlite:///a.db") == SqliteUrl(Path("a.db"))
    assert parse_storage_url("sqlite:///a.db?synchronous=normal") == SqliteUrl(
        Path("a.db"), "normal"
    )
    assert parse_storage_url("sqlite:////abs/a.db?synchronous=full") == SqliteUrl(
        Path("/abs/a.db"), "full"
    )


def _no_files(path: Path) -> bool:
    return not any(path.parent.glob(path.name + "*"))


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("synchronous=off", r"synchronous URL parameter must be 'full' or 'normal', got 'off'"),
        ("synchronous=extra", r"got 'extra'"),
        ("synchronous=NORMAL", r"got 'NORMAL'"),
        ("synchronous=", r"got ''"),
        ("synchronous", r"cannot parse the query 'synchronous'"),
        ("sync=normal", r"unknown SQLite URL parameter\(s\) 'sync'"),
        ("synchronous=normal&mode=ro", r"unknown SQLite URL parameter\(s\) 'mode'"),
        ("synchronous=normal&synchronous=full", r"synchronous is given more than once"),
    ],
)
async def test_bad_url_parameters_are_refused_before_any_file_exists(
    query: str, problem: str, sqlite_path: Path
) -> None:
    url = f"sqlite:///{sqlite_path}?{query}"
    with pytest.raises(ValueError, match=problem) as raised:
        async with open_storage(url):
            pass
    assert url in str(raised.value)  # the message shows the URL it refuses
    assert _no_files(sqlite_path)


@pytest.mark.parametrize("value", ["off", "extra", "NORMAL", "Full", "", 1, None])
async def test_bad_option_values_are_refused_before_any_file_exists(
    value: object, sqlite_path: Path
) -> None:
    expected = rf"synchronous must be 'full' or 'normal', got {value!r}"
    if value is not None:  # None is open_storage's "not given"
        url = f"sqlite:///{sqlite_path}"
        with pytest.raises(ValueError, match="sqlite_" + expected):
            async with open_storage(url, sqlite_synchronous=value):  # type: ignore[arg-type]
                pass
    with pytest.raises(ValueError, match=expected):
        SQLiteDurableStorage(sqlite_path, synchronous=value)  # type: ignore[arg-type]
    assert _no_files(sqlite_path)


async def test_the_url_and_the_option_together_are_refused(sqlite_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous is given twice"):
        async with open_storage(
            f"sqlite:///{sqlite_path}?synchronous=normal", sqlite_synchronous="normal"
        ):
            pass
    assert _no_files(sqlite_path)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("memory://", "sqlite_synchronous does not apply to memory://"),
        ("postgresql://nobody@127.0.0.1:1/db", "sqlite_synchronous does not apply to postgres"),
    ],
)
async def test_the_option_is_refused_for_other_backends(url: str, refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        async with open_storage(url, sqlite_synchronous="normal"):
            pass
