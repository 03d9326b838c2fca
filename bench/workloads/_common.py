"""Pieces every executor workload uses: trivial tasks, result checks, waiting for closing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from bench.cases import WorkloadFailedError
from durable_execution import DurableStorage, FinishedTaskExecution, TaskContext

# Generous: a trivial run never comes near it, but a starved event loop under a 10,000-task
# burst must not turn a throughput measurement into a timeout measurement.
TASK_TIMEOUT_MS: Final = 60_000


async def echo(ctx: TaskContext, value: int) -> int:
    """The trivial task: async, so that no thread hop is measured, and returns its input."""
    return value


def expect_outputs(
    executions: Sequence[FinishedTaskExecution[int]], expected: Sequence[int], what: str
) -> None:
    """Raise unless every execution completed with the expected output."""
    wrong = [
        (index, execution.status)
        for index, (execution, value) in enumerate(zip(executions, expected, strict=True))
        if execution.status != "completed" or execution.output != value
    ]
    if wrong:
        raise WorkloadFailedError(
            f"{what}: {len(wrong)} of {len(expected)} executions did not complete with the "
            f"expected output; first few (index, status): {wrong[:5]}"
        )


async def wait_until_all_closed(storage: DurableStorage, poll_s: float = 0.002) -> None:
    """Return once no finished execution is waiting to be closed (propagated to its parent).

    Handles report an execution as soon as it finished; closing happens afterwards in the
    background. Waiting for it shows whether the executor keeps up or defers work.
    """
    while True:
        async with storage.transaction() as tx:
            pending = await tx.get_finished_unclosed_task_execution_ids(limit=1)
        if not pending:
            return
        await asyncio.sleep(poll_s)
