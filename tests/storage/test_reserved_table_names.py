"""Table names that are SQL keywords: refused with a clear error, or working end to end.

The SQL pastes the table name unquoted, so a keyword that a dialect does not accept as a bare
identifier used to pass validation and then fail with a raw syntax error (``order``, ``user``…).
The list of refused words (codegen/table_name.py) is checked here against the keywords of the
PostgreSQL server and the SQLite library in use: every keyword is either refused or works.
"""

from __future__ import annotations

import _sqlite3
import ctypes
from pathlib import Path

import psycopg
import pytest

from durable_execution import DurableExecutor, TaskContext
from durable_execution.generated.postgresql import validate_table_name as validate_pg
from durable_execution.generated.sqlite import validate_table_name as validate_sqlite
from durable_execution.generated.sqlite._table import _RESERVED_WORDS
from durable_execution.storage import InspectableStorage, open_storage


def _refused(word: str) -> bool:
    """Whether both dialects' validation refuse ``word`` (in any case), as a reserved word."""
    if word.lower() not in _RESERVED_WORDS:
        validate_sqlite(word)
        validate_pg(word.upper())
        return False
    for validate in (validate_sqlite, validate_pg):
        with pytest.raises(
            ValueError, match=f"^invalid table name '{word.upper()}': it is a reserved"
        ):
            validate(word.upper())
    return True


async def _works(url: str, table: str) -> None:
    """Every statement kind the library runs, on a table named ``table``."""
    async with open_storage(url, table_name=table) as storage:
        executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=20)

        def echo(ctx: TaskContext, value: int) -> int:
            return value

        task = executor.task(id="echo", timeout_ms=5000, run=echo)
        async with executor:
            handle = await executor.enqueue_task(task, 7)
            done = await handle.wait_and_get_finished_execution(timeout_ms=20_000)
        assert done.status == "completed"
        assert isinstance(storage, InspectableStorage)
        assert len(await storage.list_task_executions(limit=5)) == 1
        assert await storage.count_task_executions_by_status() == {"completed": 1}


def _sqlite_keywords() -> list[str]:
    library = ctypes.CDLL(_sqlite3.__file__)  # the SQLite library Python uses
    words = []
    for index in range(library.sqlite3_keyword_count()):
        name = ctypes.c_char_p()
        size = ctypes.c_int()
        library.sqlite3_keyword_name(index, ctypes.byref(name), ctypes.byref(size))
        assert name.value is not None
        words.append(name.value[: size.value].decode().lower())
    return words


async def test_every_sqlite_keyword_is_refused_or_works(tmp_path: Path) -> None:
    try:
        keywords = _sqlite_keywords()
    except (AttributeError, OSError):
        pytest.skip("this SQLite library does not list its keywords")
    accepted = [word for word in keywords if not _refused(word)]
    assert "order" not in accepted
    assert accepted, "some keywords are plain identifiers to SQLite"
    for word in accepted:
        await _works(f"sqlite:///{tmp_path / word}.db", word)


async def test_every_reserved_postgresql_keyword_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        rows = conn.execute("SELECT word, catcode FROM pg_get_keywords()").fetchall()
    # R: reserved; T: reserved but usable as function or type names. Neither is a table name.
    reserved = [word for word, category in rows if category in ("R", "T")]
    assert "user" in reserved
    assert [word for word in reserved if not _refused(word)] == []
    # The others are identifiers to PostgreSQL; a few of them, end to end.
    others = sorted(
        word for word, category in rows if category in ("C", "U") and not _refused(word)
    )
    for word in ("int", "national", "position", "action", "key", "jobs"):
        assert word in [*others, "jobs"]
        await _works(postgres_url, word)
