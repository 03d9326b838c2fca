"""An attempt's result write is fenced by the version its claim wrote."""

from __future__ import annotations

from durable_execution import clock
from durable_execution._local_runs import LocalRun
from durable_execution._runner import Runner, _Outcome
from durable_execution.model import ParentTaskRef
from durable_execution.storage import InMemoryStorage, TaskExecutionUpdate

from ._support import make_record, make_runtime


def _completion() -> _Outcome:
    now = clock.now()
    return _Outcome(
        update=TaskExecutionUpdate(
            updated_at=now, status="completed", output='"stale"', finished_at=now
        ),
        inserts=[
            make_record(
                "child",
                "te_child",
                parent_task=ParentTaskRef(task_id="task", execution_id="te_row"),
            )
        ],
        finished=True,
    )


async def test_a_stale_attempt_cannot_overwrite_a_newer_one() -> None:
    storage = InMemoryStorage()
    # The row was claimed (version 1), its lease expired and it was claimed again (version 3).
    row = make_record("task", "te_row", status="running", version=3)
    async with storage.transaction() as tx:
        await tx.insert_task_executions([row])
    runner = Runner(make_runtime(storage))

    await runner._store(LocalRun("te_row", claimed_version=1), row, _completion())

    assert storage.snapshot() == [row]  # neither the update nor the child insert happened


async def test_the_current_attempt_writes_and_bumps_the_version() -> None:
    storage = InMemoryStorage()
    row = make_record("task", "te_row", status="running", version=3)
    async with storage.transaction() as tx:
        await tx.insert_task_executions([row])
    runner = Runner(make_runtime(storage))

    await runner._store(LocalRun("te_row", claimed_version=3), row, _completion())

    stored, child = storage.snapshot()
    assert (stored.status, stored.output, stored.version) == ("completed", '"stale"', 4)
    assert child.execution_id == "te_child"


async def test_a_cancelled_row_refuses_the_result_even_with_the_right_version() -> None:
    storage = InMemoryStorage()
    row = make_record("task", "te_row", status="cancelled", version=3)
    async with storage.transaction() as tx:
        await tx.insert_task_executions([row])
    runner = Runner(make_runtime(storage))

    await runner._store(LocalRun("te_row", claimed_version=3), row, _completion())

    assert storage.snapshot() == [row]
