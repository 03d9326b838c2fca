"""Guarantee 5: poison rows fail their own execution with a clear error and stall nothing else.

Rows are corrupted with raw SQL, behind the storage's back, while they are ready (at the head of
the claim FIFO), waiting for children, or finished: a JSON column that is not JSON (SQLite, with
CHECK constraints off) or JSON of the wrong shape (both), a run input the serializer refuses, an
output that does not deserialize. Healthy work enqueued after them must still complete.
"""

from __future__ import annotations

import asyncio

import pytest

from durable_execution import DurableExecutionError, DurableExecutor, TaskContext
from durable_execution.handle import TaskHandle
from durable_execution.storage import DurableStorage, MalformedRowError
from durable_execution.tasks import ChildTask, ParentTaskResult

from . import _raw_sql as raw

HEALTHY = 40


async def _set(db_url: str, execution_id: str, column: str, value: str) -> None:
    """Overwrite one column of one row with ``value`` (JSON text, or any text on SQLite).

    In a thread: the write may wait for a row lock that an executor transaction holds, and that
    transaction can only finish if the event loop keeps running.
    """
    await asyncio.to_thread(_set_blocking, db_url, execution_id, column, value)


def _set_blocking(db_url: str, execution_id: str, column: str, value: str) -> None:
    postgres = db_url.startswith("postgresql")
    placeholder = "%s" if postgres else "?"
    cast = "::jsonb" if postgres and column not in ("run_input", "output", "run_output") else ""
    changed = raw.execute(
        db_url,
        f"UPDATE {raw.TABLE} SET {column} = {placeholder}{cast} WHERE execution_id = {placeholder}",
        (value, execution_id),
    )
    assert changed == 1


async def test_poison_rows_fail_alone_and_everything_else_completes(
    db_url: str, storage: DurableStorage
) -> None:
    sqlite = db_url.startswith("sqlite")
    executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)

    def echo(ctx: TaskContext, value: int) -> int:
        return value

    echo_task = executor.task(id="echo", timeout_ms=5000, run=echo)
    release = asyncio.Event()

    async def slow_child(ctx: TaskContext, value: int) -> int:
        await release.wait()
        return value

    child_task = executor.task(id="slow_child", timeout_ms=30_000, run=slow_child)

    async def parent(ctx: TaskContext, value: int) -> ParentTaskResult[int]:
        return ParentTaskResult(output=value, children_tasks=[ChildTask(child_task, value)])

    parent_task = executor.parent_task(id="parent", timeout_ms=5000, run_parent=parent)

    # Poison rows first, so that they sit at the head of the claim order.
    bad_json = await executor.enqueue_task(echo_task, 1)
    wrong_shape = await executor.enqueue_task(echo_task, 2)
    repairable = await executor.enqueue_task(echo_task, 3)
    bad_input = await executor.enqueue_task(echo_task, 4)
    pickle_input = await executor.enqueue_task(echo_task, 5)
    await _set(db_url, wrong_shape.execution_id, "children_tasks", '{"not": "an array"}')
    await _set(db_url, repairable.execution_id, "error", '{"error_type": "no such type"}')
    await _set(db_url, bad_input.execution_id, "run_input", "{not json")
    await _set(db_url, pickle_input.execution_id, "run_input", '{"$de": "pickle", "v": "gASVAAAA"}')
    if sqlite:  # PostgreSQL's jsonb cannot even hold invalid JSON
        await _set(db_url, bad_json.execution_id, "retry_options", "{truncated")
    else:
        await _set(db_url, bad_json.execution_id, "retry_options", "[1, 2]")

    async with executor:
        waiting_parent = await executor.enqueue_task(parent_task, 6)
        healthy = [await executor.enqueue_task(echo_task, 100 + i) for i in range(HEALTHY)]
        outputs = [
            await _completed_output(handle) for handle in healthy
        ]  # every healthy task completes behind the poison rows
        assert outputs == [100 + i for i in range(HEALTHY)]

        # Input that does not deserialize: an ordinary, clear, non-retried failure. Reading the
        # execution (which carries its input) reports the same problem.
        for handle, problem in ((bad_input, "Expecting property name"), (pickle_input, "pickle")):
            status, message = await _eventually_finished(db_url, handle.execution_id)
            assert status == "failed"
            assert message is not None
            assert message.startswith("Error deserializing value: ")
            assert problem in message
            with pytest.raises(DurableExecutionError, match=r"^Error deserializing value: "):
                await handle.get_execution()

        # The malformed error column was the only fault: quarantine rewrote it, the row reads.
        fixed = await repairable.wait_and_get_finished_execution(timeout_ms=20_000)
        assert fixed.status == "failed"
        assert fixed.error.message.startswith(
            f"Stored execution {repairable.execution_id} has a malformed error: "
        )

        # Still unreadable: failed in the table with the reason, and the handle says why.
        for handle, column in ((bad_json, "retry_options"), (wrong_shape, "children_tasks")):
            status, message = await _eventually_finished(db_url, handle.execution_id)
            assert status == "failed"
            assert message is not None
            assert message.startswith(
                f"Stored execution {handle.execution_id} has a malformed {column}: "
            )
            assert "repair or delete the row" in message
            with pytest.raises(MalformedRowError, match=column):
                await handle.get_execution()

        # A parent corrupted while it waits for its child is failed once the child finishes,
        # instead of waiting forever.
        await _eventually_status(db_url, waiting_parent.execution_id, "waiting_for_children_tasks")
        await _set(db_url, waiting_parent.execution_id, "finalize_task_error", "[1]")
        release.set()
        status, message = await _eventually_finished(db_url, waiting_parent.execution_id)
        assert status == "failed"
        assert message is not None
        assert "has a malformed finalize_task_error" in message

        # Output that does not deserialize: the reader gets a clear error.
        done = await executor.enqueue_task(echo_task, 7)
        await _completed_output(done)
        await _set(db_url, done.execution_id, "output", '{"$de": "no-such-tag", "v": 1}')
        with pytest.raises(DurableExecutionError, match="Error deserializing value: unknown tag"):
            await done.get_execution()

        # And the loops are still alive for new work.
        late = await executor.enqueue_task(echo_task, 8)
        assert await _completed_output(late) == 8


async def _completed_output(handle: TaskHandle[int]) -> int:
    execution = await handle.wait_and_get_finished_execution(
        polling_interval_ms=50, timeout_ms=20_000
    )
    assert execution.status == "completed", execution
    return execution.output


async def _eventually_status(db_url: str, execution_id: str, status: str) -> None:
    for _ in range(400):
        if raw.status_and_error(db_url, execution_id)[0] == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{execution_id} never reached {status}")


async def _eventually_finished(db_url: str, execution_id: str) -> tuple[str, str | None]:
    for _ in range(400):
        status, message = raw.status_and_error(db_url, execution_id)
        if status not in ("ready", "running", "waiting_for_children_tasks"):
            return status, message
        await asyncio.sleep(0.05)
    raise AssertionError(f"{execution_id} never finished")
