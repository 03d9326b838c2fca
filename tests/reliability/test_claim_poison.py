"""A row the claim cannot process is failed alone; the rows behind it in the FIFO still run.

Rows are corrupted with raw SQL, behind the storage's back, while they are ready and first in
the claim order: a ``timeout_ms`` whose lease overflows the claim statement's arithmetic
(``bigint``/``interval`` out of range on PostgreSQL, a float that the CHECK on ``expires_at``
refuses on SQLite), and timestamps outside what Python's ``datetime`` holds (years 1-9999). Each
used to make every claim fail, forever, so that nothing behind it ran. Now the claim falls back to
one row at a time, and each bad row ends ``failed`` with an error naming the problem.
"""

from __future__ import annotations

import asyncio
import sys

from durable_execution import DurableExecutor, TaskContext
from durable_execution.storage import DurableStorage

from . import _raw_sql as raw

HEALTHY = 30


# Timeouts the option checks would refuse. They once made every claim fail (the lease was
# now + timeout_ms); since leases are now + expire_ms, renewed, the claim never computes with
# timeout_ms, so such a row simply runs.
HUGE_TIMEOUTS = {"timeout_max": sys.maxsize, "timeout_huge": 2**62}


def _corruptions(postgres: bool) -> dict[str, tuple[str, object, str]]:
    """name -> (column, raw value, a fragment of the stored error message)."""
    if postgres:
        return {
            "start_bc": ("start_at", "4000-01-01 00:00:00+00 BC", "malformed start_at"),
            "created_far": ("created_at", "20000-01-01 00:00:00+00", "malformed created_at"),
        }
    return {
        "start_bc": ("start_at", -(2**62), "malformed start_at"),
        "created_far": ("created_at", 2**62, "malformed created_at"),
    }


async def _set(db_url: str, execution_id: str, column: str, value: object) -> None:
    postgres = db_url.startswith("postgresql")
    placeholder = "%s" if postgres else "?"
    cast = "::timestamptz" if postgres and column.endswith("_at") else ""
    changed = await asyncio.to_thread(
        raw.execute,
        db_url,
        f"UPDATE {raw.TABLE} SET {column} = {placeholder}{cast} WHERE execution_id = {placeholder}",
        (value, execution_id),
    )
    assert changed == 1


async def _eventually_finished(db_url: str, execution_id: str) -> tuple[str, str | None]:
    for _ in range(600):
        status, message = raw.status_and_error(db_url, execution_id)
        if status not in ("ready", "running"):
            return status, message
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"{execution_id} never finished: {raw.status_and_error(db_url, execution_id)}"
    )


async def test_rows_the_claim_cannot_process_fail_alone(
    db_url: str, storage: DurableStorage
) -> None:
    executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)

    def echo(ctx: TaskContext, value: int) -> int:
        return value

    echo_task = executor.task(id="echo", timeout_ms=5000, run=echo)
    corruptions = _corruptions(db_url.startswith("postgresql"))
    bad = {}
    for name, (column, value, _) in corruptions.items():
        handle = await executor.enqueue_task(echo_task, -1)
        await _set(db_url, handle.execution_id, column, value)
        bad[name] = handle.execution_id
    huge = {}
    for name, value in HUGE_TIMEOUTS.items():
        handle = await executor.enqueue_task(echo_task, -2)
        await _set(db_url, handle.execution_id, "timeout_ms", value)
        huge[name] = handle
    # Behind the bad rows in FIFO order (start_at, then insertion).
    healthy = [await executor.enqueue_task(echo_task, i) for i in range(HEALTHY)]

    async with executor:
        for i, handle in enumerate(healthy):
            execution = await handle.wait_and_get_finished_execution(
                polling_interval_ms=50, timeout_ms=30_000
            )
            assert execution.status == "completed", execution
            assert execution.output == i
        for name, execution_id in bad.items():
            status, message = await _eventually_finished(db_url, execution_id)
            assert status == "failed", (name, status, message)
            assert message is not None
            assert message.startswith(f"Stored execution {execution_id} has a malformed "), message
            assert corruptions[name][2] in message, (name, message)
            assert "repair or delete the row" in message

        for name, handle in huge.items():
            execution = await handle.wait_and_get_finished_execution(
                polling_interval_ms=50, timeout_ms=30_000
            )
            assert execution.status == "completed", (name, execution)
            assert execution.output == -2

        # The loops are still alive for new work.
        late = await executor.enqueue_task(echo_task, 99)
        done = await late.wait_and_get_finished_execution(polling_interval_ms=50, timeout_ms=30_000)
        assert done.status == "completed"
