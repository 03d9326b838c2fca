"""Rerun: a new execution of a finished execution's task, with the same input and options.

The operator's "run that again" after fixing a bug or an outside system: the original stays as
it was (its error, its output, its tree), and the new execution is an ordinary top-level one
that remembers what it reruns (``TaskExecutionRecord.rerun_of``, shown by ``show``). A parent
reruns its whole tree, since its new execution makes its children anew when it runs; a sequential
chain reruns from its first step. No task needs to be registered here: the row has what it takes.
"""

from __future__ import annotations

import logging

from durable_execution import clock
from durable_execution._transactions import TransactionRunner
from durable_execution.errors import DurableExecutionError, DurableExecutionNotFoundError
from durable_execution.ids import check_execution_id, generate_execution_id
from durable_execution.model import FINISHED_STATUSES
from durable_execution.storage.types import (
    DurableStorage,
    DurableStorageTx,
    TaskExecutionRecord,
)


def rerun_record(original: TaskExecutionRecord) -> TaskExecutionRecord:
    """The new, ready, top-level execution that reruns ``original`` (which must be finished)."""
    if original.status not in FINISHED_STATUSES:
        raise DurableExecutionError(
            f"Execution {original.execution_id} is {original.status}: only a finished execution"
            " can be rerun (cancel it first, or wait for it)",
            is_retryable=False,
        )
    if original.parent_task is not None and original.parent_task.is_finalize_task:
        raise DurableExecutionError(
            f"Execution {original.execution_id} is the finalize task of"
            f" {original.parent_task.execution_id}: rerun that parent instead (a finalize task's"
            " input is its parent's and children's outputs)",
            is_retryable=False,
        )
    now = clock.now()
    return TaskExecutionRecord(
        task_id=original.task_id,
        execution_id=generate_execution_id(),
        retry_options=original.retry_options,
        # Now: an operator's rerun should not wait out the original's initial delay again.
        sleep_ms_before_run=0,
        timeout_ms=original.timeout_ms,
        run_input=original.run_input,
        status="ready",
        start_at=now,
        created_at=now,
        updated_at=now,
        rerun_of=original.execution_id,
        # Same queue and concurrency key: a rerun waits for its key's slot like any execution.
        queue=original.queue,
        concurrency_key=original.concurrency_key,
        concurrency_limit=original.concurrency_limit,
        # Its priority, not its idempotency key: the original keeps the key (a rerun is a new
        # execution on purpose; an enqueue with that key still finds the original).
        priority=original.priority,
    )


async def rerun_execution(
    storage: DurableStorage, execution_id: str, *, logger: logging.Logger | None = None
) -> TaskExecutionRecord:
    """Enqueue a rerun of finished execution ``execution_id`` and return the new record.

    From any process, without registering the task (the executors that run it must know it).
    Raises :class:`DurableExecutionNotFoundError` if no execution has that id, and
    :class:`DurableExecutionError` if it is still active or is a finalize execution.
    """
    check_execution_id(execution_id)
    transactions = TransactionRunner(storage, logger or logging.getLogger("durable_execution"))

    made: list[TaskExecutionRecord] = []  # the rerun the first attempt tried to store

    async def enqueue(tx: DurableStorageTx) -> TaskExecutionRecord:
        rows = await tx.get_task_executions([execution_id])
        if not rows:
            raise DurableExecutionNotFoundError(f"Execution {execution_id} not found")
        record = rerun_record(rows[0])
        made[:] = [record]
        await tx.insert_task_executions([record])
        return record

    async def enqueue_unless_stored(tx: DurableStorageTx) -> TaskExecutionRecord:
        # A retry after an unknown commit outcome must not enqueue a second rerun.
        if made and await tx.get_task_executions([made[0].execution_id]):
            return made[0]
        return await enqueue(tx)

    return await transactions.run(enqueue, again=enqueue_unless_stored)
