"""SQLite when the disk fills: nothing is lost, duplicated or left running once space is back.

Tasks run and store sizeable results until the database's own growth fills its disk, which
stays full for several leases. Meanwhile every write fails with ``SQLITE_FULL`` (logged as
such): finished runs keep retrying their result writes, running attempts whose leases cannot be
renewed are stopped and later made ready again. Once space is freed every execution completes,
each one's work completed exactly once, and no expiry was counted (a full disk is not a crash).

Two ways to fill the disk:

* ``tmpfs``: the real thing. The database lives on a small tmpfs mounted for the test (needs
  root; skipped where ``mount`` is not allowed), filled up by a file that is deleted to free
  space.
* ``max_page_count``: SQLite's own cap on the database size (``PRAGMA max_page_count`` on the
  storage's connection) answers ``SQLITE_FULL`` the same way, without root; raising the cap
  frees the space.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from tests._stored import all_records

from durable_execution import DurableExecutor, TaskContext
from durable_execution.model import FINISHED_STATUSES
from durable_execution.storage import SQLiteDurableStorage

TASKS = 30
RESULT_BYTES = 60_000  # the 30 results need ~1.8 MB; the full disk leaves room for a few
EXPIRE_MS = 1000
FULL_FOR_S = 5.0  # five leases
WAIT_S = 120.0

Fill = Callable[[], Awaitable[Callable[[], Awaitable[None]]]]


@contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@asynccontextmanager
async def _full_disk(
    variant: str, tmp_path: Path
) -> AsyncIterator[tuple[SQLiteDurableStorage, Fill]]:
    """The storage, and how to fill its disk (which returns how to free it)."""
    if variant == "tmpfs":
        with _tmpfs(tmp_path / "mnt", "16m") as mnt:
            async with SQLiteDurableStorage(mnt / "durable.db") as storage:
                await storage.migrate()

                async def fill_tmpfs() -> Callable[[], Awaitable[None]]:
                    filler = mnt / "filler"
                    stat = os.statvfs(mnt)
                    free = stat.f_bavail * stat.f_frsize
                    filler.write_bytes(b"\0" * max(0, free - 400_000))

                    async def free_space() -> None:
                        filler.unlink()

                    return free_space

                yield storage, fill_tmpfs
        return
    async with SQLiteDurableStorage(tmp_path / "durable.db") as storage:
        await storage.migrate()

        async def cap_pages() -> Callable[[], Awaitable[None]]:
            def cap(conn: sqlite3.Connection) -> None:
                (pages,) = conn.execute("PRAGMA page_count").fetchone()
                conn.execute(f"PRAGMA max_page_count = {int(pages) + 100}")

            await storage.run_on_worker(cap)

            async def free_space() -> None:
                await storage.run_on_worker(
                    lambda conn: conn.execute("PRAGMA max_page_count = 1073741823")
                )

            return free_space

        yield storage, cap_pages


@pytest.mark.parametrize("variant", ["tmpfs", "max_page_count"])
async def test_a_full_disk_delays_work_but_loses_duplicates_and_strands_nothing(
    variant: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable_execution")
    runs: Counter[int] = Counter()
    returned: Counter[int] = Counter()

    async with _full_disk(variant, tmp_path) as (storage, fill):
        executor = DurableExecutor(
            storage, expire_ms=EXPIRE_MS, background_process_intra_batch_sleep_ms=100
        )

        @executor.task(id="bulky", timeout_ms=1000)
        async def bulky(ctx: TaskContext, n: int) -> str:
            runs[n] += 1
            await asyncio.sleep(0.1 + (n % 5) * 0.1)
            returned[n] += 1
            return str(n) * RESULT_BYTES

        async with executor:
            handles = await executor.enqueue_tasks(bulky, list(range(TASKS)))
            free_space = await fill()
            # Until the disk is full for everyone, then for several leases more.
            for _ in range(int(WAIT_S * 10)):
                if any("SQLITE_FULL" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(FULL_FOR_S)
            during = await all_records(storage, ["running"])
            await free_space()
            executions = [
                await handle.wait_and_get_finished_execution(timeout_ms=int(WAIT_S * 1000))
                for handle in handles
            ]
            # Closing is part of finishing: wait until no row is left open.
            for _ in range(int(WAIT_S * 10)):
                rows = await all_records(storage)
                if all(r.status in FINISHED_STATUSES and r.is_closed for r in rows):
                    break
                await asyncio.sleep(0.1)

    assert during, "the disk filled while executions were running"
    assert [e.status for e in executions] == ["completed"] * TASKS
    assert [e.output for e in executions if e.status == "completed"] == [
        str(n) * RESULT_BYTES for n in range(TASKS)
    ]
    assert [(r.execution_id, r.status, r.is_closed) for r in rows if not r.is_closed] == []
    # Each one's work completed exactly once: no finished run was dropped and run again.
    assert returned == Counter(range(TASKS))
    assert all(r.lease_expiries == 0 for r in rows), [r.lease_expiries for r in rows]
    messages = [r.getMessage() for r in caplog.records]
    assert any("SQLITE_FULL" in m and "free disk space" in m for m in messages), messages[:5]
    print(
        f"{variant}: {len(during)} running while full, {sum(runs.values())} runs for {TASKS}"
        " executions"
    )
