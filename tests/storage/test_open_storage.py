"""``open_storage``: URL parsing, option checks, table-name validation and connection errors.

Every refusal is a clear ``ValueError`` (or ``StorageError`` for a database that cannot be
reached) that names the problem, and no message ever shows a password from the URL.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TypedDict

import pytest

import durable_execution
from durable_execution import open_storage as exported_open_storage
from durable_execution.generated import sqlite as lite
from durable_execution.storage import (
    InMemoryStorage,
    PostgresDurableStorage,
    SQLiteDurableStorage,
    StorageError,
    open_storage,
)
from durable_execution.storage.url import PostgresUrl, SqliteUrl, mask_password, parse_storage_url

from ._backends import storage_url
from ._records import all_ids, insert, read, record

SECRET = "s3cr3t-pw"


class BackendOptions(TypedDict, total=False):
    busy_timeout_ms: int
    pool_min_size: int
    pool_max_size: int


def exists(path: Path) -> bool:
    return path.exists()  # a blocking call, kept out of the async tests' bodies


def test_open_storage_is_exported_from_the_package() -> None:
    assert exported_open_storage is open_storage


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "no scheme"),
        ("durable.db", "no scheme"),
        ("/abs/path.db", "no scheme"),
        ("mysql://root@localhost/db", "unsupported storage URL scheme 'mysql'"),
        ("redis://localhost", "unsupported storage URL scheme 'redis'"),
        ("memory://somewhere", "memory:// takes nothing"),
        ("sqlite://host/file.db", "no host"),
        ("sqlite:/file.db", "no host"),
        ("sqlite:///", "no database file name"),
        ("sqlite:////tmp/dir/", "no database file name"),
        ("sqlite:///file.db?mode=ro", r"unknown SQLite URL parameter\(s\) 'mode'"),
        ("sqlite:///file.db#frag", "take no fragment"),
        ("sqlite:///:memory:", "use memory://"),
        ("postgresql:/db", "expected postgresql://"),
        ("postgresql://host:port/db", "Port could not be cast"),
        ("postgresql://host:99999/db", "Port out of range"),
        ("postgresql://host/db?nonsense=1", 'invalid URI query parameter: "nonsense"'),
    ],
)
async def test_malformed_urls_are_refused_with_the_problem_named(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        async with open_storage(url):
            pass


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://user:{SECRET}@host:notaport/db",
        f"postgresql://user:{SECRET}@host/db?bogus=1",
        f"postgres://host/db?password={SECRET}&bogus=1",
        f"mysql://user:{SECRET}@host/db",
        f"postgresql://user:{SECRET}@host:99999/db",
    ],
)
async def test_error_messages_mask_the_password(url: str) -> None:
    with pytest.raises(ValueError, match=r"\*\*\*") as raised:
        async with open_storage(url):
            pass
    assert SECRET not in str(raised.value)


def test_mask_password_keeps_everything_else() -> None:
    assert mask_password(f"postgresql://me:{SECRET}@db.example:5433/prod?sslmode=require") == (
        "postgresql://me:***@db.example:5433/prod?sslmode=require"
    )
    assert mask_password("postgresql://me@db/prod") == "postgresql://me@db/prod"
    assert mask_password("sqlite:////abs/file.db") == "sqlite:////abs/file.db"


@pytest.mark.parametrize(
    ("conninfo", "shown"),
    [
        (f"host=db password={SECRET} dbname=app", "host=db password=*** dbname=app"),
        (f"host=db password='a {SECRET}' dbname=app", "host=db password=*** dbname=app"),
        (f"postgresql://me:a/{SECRET}@db/app", "postgresql://me:***@db/app"),
        (f"postgresql://me:a#{SECRET}@db/app", "postgresql://me:***@db/app"),
        (f"postgresql://me:a?{SECRET}@db/app", "postgresql://me:***@db/app"),
        (f"postgresql://me:a@{SECRET}@db/app", "postgresql://me:***@db/app"),
        (
            f"postgresql://db/app?password={SECRET}&sslmode=require",
            "postgresql://db/app?password=***&sslmode=require",
        ),
        ("host=db dbname=app", "host=db dbname=app"),
    ],
)
def test_mask_password_hides_a_password_however_written(conninfo: str, shown: str) -> None:
    assert mask_password(conninfo) == shown


def test_a_key_value_string_is_a_postgresql_target() -> None:
    target = parse_storage_url(f"host=db port=5433 password={SECRET}")
    assert target == PostgresUrl(
        conninfo=f"host=db port=5433 password={SECRET}", masked="host=db port=5433 password=***"
    )
    with pytest.raises(ValueError, match=r"malformed connection string .*password=\*\*\*") as bad:
        parse_storage_url(f"host=db password={SECRET} stray")
    assert SECRET not in str(bad.value)


def test_sqlite_paths_relative_and_absolute() -> None:
    assert parse_storage_url("sqlite:///data/durable.db") == SqliteUrl(Path("data/durable.db"))
    assert parse_storage_url("sqlite:////var/lib/x.db") == SqliteUrl(Path("/var/lib/x.db"))


async def test_memory_url_opens_an_in_memory_storage() -> None:
    async with open_storage("memory://") as storage:
        assert isinstance(storage, InMemoryStorage)
        await insert(storage, record("te_a"))
        assert await all_ids(storage) == ["te_a"]


async def test_relative_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_storage("sqlite:///relative.db", busy_timeout_ms=1234) as storage:
        assert isinstance(storage, SQLiteDurableStorage)
        assert storage.busy_timeout_ms == 1234
        await insert(storage, record("te_a"))
    assert exists(tmp_path / "relative.db")
    async with open_storage(f"sqlite:///{tmp_path / 'relative.db'}") as reopened:
        assert await all_ids(reopened) == ["te_a"]


async def test_sqlite_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(StorageError, match=r"Cannot open SQLite database .*x\.db"):
        async with open_storage(f"sqlite:///{missing}"):
            pass


async def test_postgres_scheme_alias_and_pool_options(postgres_url: str) -> None:
    alias = "postgres://" + postgres_url.removeprefix("postgresql://")
    async with open_storage(alias, pool_min_size=0, pool_max_size=3) as storage:
        assert isinstance(storage, PostgresDurableStorage)
        assert (storage.pool_min_size, storage.pool_max_size) == (0, 3)
        await insert(storage, record("te_a"))
        assert await all_ids(storage) == ["te_a"]


async def test_an_unreachable_postgres_server_is_a_clear_error_without_the_password() -> None:
    url = f"postgresql://someone:{SECRET}@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(StorageError, match=r"Cannot connect to postgresql://someone:\*\*\*@") as e:
        async with open_storage(url):
            pass
    assert SECRET not in str(e.value)


@pytest.mark.parametrize(
    ("url", "options", "refused"),
    [
        ("memory://", {"busy_timeout_ms": 5}, "busy_timeout_ms does not apply to memory://"),
        ("memory://", {"pool_max_size": 5}, "pool_max_size does not apply to memory://"),
        ("sqlite:///x.db", {"pool_min_size": 1}, "pool_min_size does not apply to sqlite://"),
        ("postgresql://h/db", {"busy_timeout_ms": 5}, "busy_timeout_ms does not apply to postgres"),
    ],
)
async def test_options_for_another_backend_are_refused(
    url: str, options: BackendOptions, refused: str
) -> None:
    with pytest.raises(ValueError, match=refused):
        async with open_storage(url, **options):
            pass


INJECTIONS = [
    "tasks; DROP TABLE users",
    "tasks--",
    'tasks" OR "1"="1',
    "tasks(id)",
    "my tasks",
    "1tasks",
    "",
    "t" * 33,  # the derived index names would not fit PostgreSQL's 63-byte identifiers
    "tasks\n",
    "schema.tasks",
    "täsks",
]


@pytest.mark.parametrize("table_name", INJECTIONS)
@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql"])
async def test_invalid_table_names_are_refused_before_anything_happens(
    table_name: str, backend: str, sqlite_path: Path
) -> None:
    url = {
        "memory": "memory://",
        "sqlite": f"sqlite:///{sqlite_path}",
        "postgresql": "postgresql://nobody@127.0.0.1:1/never-contacted",
    }[backend]
    with pytest.raises(ValueError, match="invalid table name") as raised:
        async with open_storage(url, table_name=table_name):
            pass
    assert "^[A-Za-z_][A-Za-z0-9_]*$" in str(raised.value)
    assert not exists(sqlite_path)  # the database was never opened


def test_storages_validate_table_names_too(sqlite_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid table name"):
        SQLiteDurableStorage(sqlite_path, table_name="x; DROP TABLE y")
    with pytest.raises(ValueError, match="invalid table name"):
        PostgresDurableStorage("postgresql://nobody@127.0.0.1:1/db", table_name="x y")


async def test_an_unmigrated_database_says_to_migrate(
    request: pytest.FixtureRequest, sql_backend: str
) -> None:
    async with open_storage(storage_url(request, sql_backend), migrate=False) as storage:
        with pytest.raises(StorageError, match=r"durable_task_executions does not exist.*migrate"):
            await read(storage, "te_a")  # in a transaction
        with pytest.raises(StorageError, match=r"durable_task_executions does not exist.*migrate"):
            await all_ids(storage)  # the operators' listing, outside any transaction
        assert isinstance(storage, SQLiteDurableStorage | PostgresDurableStorage)
        # Every numbered migration, from the migration files (no version list to keep up).
        assert await storage.migrate() == [m.version for m in lite.MIGRATIONS if m.version > 0]
        await insert(storage, record("te_a"))  # the failed transaction left nothing behind
        assert await all_ids(storage) == ["te_a"]


_WITHOUT_PSYCOPG = """
import asyncio, sys
sys.modules["psycopg"] = None  # as if the optional 'postgresql' extra were not installed
sys.modules["psycopg_pool"] = None
import durable_execution
from durable_execution import open_storage

async def main(path):
    async with open_storage("sqlite:///" + path) as storage:
        async with storage.transaction() as tx:
            await tx.insert_task_executions([])
    try:
        async with open_storage("postgresql://u:pw@127.0.0.1:1/db"):
            pass
    except ImportError as error:
        print("ImportError:", error)

asyncio.run(main(sys.argv[1]))
"""


async def test_sqlite_works_without_the_postgresql_extra(sqlite_path: Path) -> None:
    source_root = str(Path(durable_execution.__file__).parents[1])
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WITHOUT_PSYCOPG,
        str(sqlite_path),
        env={**os.environ, "PYTHONPATH": source_root},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await child.communicate()
    assert child.returncode == 0, stderr.decode()
    assert "pip install 'durable-execution[postgresql]'" in stdout.decode()
