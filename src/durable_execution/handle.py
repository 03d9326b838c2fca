"""A handle on one execution: read it, wait for it to finish, cancel it.

Waiting is event-driven: the executor that created the handle wakes it whenever it commits a
finished status for this execution, and the handle polls storage every ``polling_interval_ms``
(default 1000) only to see changes made by other processes. Handles keep working after the
executor shut down (then they only poll). A wait also outlives a storage outage: transient read
errors are logged and the wait polls on (its ``timeout_ms`` still bounds it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final, Generic, TypeVar, cast

from durable_execution._cancellation import cancel_execution as cancel_in_runtime
from durable_execution._cancellation import write_cancellation
from durable_execution._notifier import Subscribed, poll_says_read, subscribe
from durable_execution._options import check_wait_ms
from durable_execution._runtime import Runtime
from durable_execution._transactions import TransactionRunner, is_transient
from durable_execution.errors import DurableExecutionNotFoundError, DurableExecutionTimedOutError
from durable_execution.executions import (
    FinishedTaskExecution,
    TaskExecution,
    execution_from_record,
)
from durable_execution.model import FINISHED_STATUSES
from durable_execution.storage.types import (
    DurableStorage,
    TaskExecutionRecord,
)

OutputT_co = TypeVar("OutputT_co", covariant=True)

DEFAULT_POLLING_INTERVAL_MS: Final = 1000


async def read_record(runtime: Runtime, execution_id: str) -> TaskExecutionRecord:
    record = await runtime.record_reader.submit(execution_id)
    if record is None:
        raise DurableExecutionNotFoundError(f"Execution {execution_id} not found")
    return record


class TaskHandle(Generic[OutputT_co]):
    __slots__ = ("_enqueued", "_execution_id", "_generation", "_rt", "_subscription", "_task_id")

    def __init__(
        self,
        runtime: Runtime,
        task_id: str,
        execution_id: str,
        *,
        subscribed: Subscribed | None = None,
    ) -> None:
        """``subscribed``: the execution's subscription and its generation then, taken by the
        enqueue that created the execution before its insert was sent (so the execution exists,
        and no finish committed here since is missed)."""
        self._rt = runtime
        self._task_id = task_id
        self._execution_id = execution_id
        self._enqueued = subscribed is not None
        if subscribed is None:
            subscribed = subscribe(runtime.notifier, execution_id)
        # Held for the handle's life: finishes committed here from then on are kept in it.
        self._subscription, self._generation = subscribed  # notices since: see the wait

    @property
    def task_id(self) -> str:
        return self._task_id

    @property
    def execution_id(self) -> str:
        return self._execution_id

    def _public(self, record: TaskExecutionRecord) -> TaskExecution[OutputT_co]:
        # The output was produced by this handle's task, whose output type is OutputT.
        return cast("TaskExecution[OutputT_co]", execution_from_record(record, self._rt.serializer))

    async def get_execution(self) -> TaskExecution[OutputT_co]:
        return self._public(await read_record(self._rt, self._execution_id))

    async def wait_and_get_finished_execution(
        self, *, polling_interval_ms: int | None = None, timeout_ms: int | None = None
    ) -> FinishedTaskExecution[OutputT_co]:
        """The execution once it finished.

        Raises :class:`DurableExecutionTimedOutError` if ``timeout_ms`` passes first. Cancelling
        the awaiting coroutine only stops the wait, never the execution. Both durations are at
        most 2**40 ms, like every other (a ``ValueError`` says so).
        """
        check_wait_ms("polling_interval_ms", polling_interval_ms)
        check_wait_ms("timeout_ms", timeout_ms)
        interval_s = (
            polling_interval_ms
            if polling_interval_ms is not None and polling_interval_ms > 0
            else DEFAULT_POLLING_INTERVAL_MS
        ) / 1000
        if timeout_ms is None:
            return await self._wait_finished(interval_s)  # no deadline to arm
        deadline = asyncio.timeout(max(timeout_ms, 0) / 1000)
        try:
            async with deadline:
                return await self._wait_finished(interval_s)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise DurableExecutionTimedOutError(
                f"Timed out waiting for execution {self._execution_id} to finish"
            ) from None

    async def _wait_finished(self, interval_s: float) -> FinishedTaskExecution[OutputT_co]:
        subscription = self._subscription
        poller = self._rt.finished_poller
        # A finish committed here since the handle exists is in the subscription, so an enqueued
        # execution's first check asks only whether another process finished it (an ids-only
        # poll shared by every handle, raced with the notice) unless a notice came already;
        # any other handle's first check reads the row (so an unknown id raises NotFound).
        woken = not self._enqueued or subscription.generation != self._generation
        first = None if woken else poller.finished_future(self._execution_id)
        # Then every interval_s the shared poll wakes the subscription if it finds it finished.
        poller.watch(self._execution_id, subscription, interval_s)
        try:
            while True:
                seen = subscription.generation
                try:
                    record = subscription.record
                    if record is None and woken:
                        record = await read_record(self._rt, self._execution_id)
                except Exception as error:
                    if not is_transient(error):
                        raise
                    self._cannot_read_yet(error)
                    await asyncio.sleep(interval_s)
                    continue
                if record is not None and record.status in FINISHED_STATUSES:
                    return cast("FinishedTaskExecution[OutputT_co]", self._public(record))
                if first is not None and first.done():
                    woken, first = poll_says_read(first), None
                    if woken:
                        continue
                # Woken by a notice (which may have come while the row was being read), by the
                # shared poll, or by the first poll: then the row is read.
                await subscription.wait(seen, first)
                poll_error, subscription.poll_error = subscription.poll_error, None
                woken = poll_error is None
                if poll_error is not None:
                    if not is_transient(poll_error):
                        raise poll_error
                    self._cannot_read_yet(poll_error)  # the next shared poll tries again
        finally:
            poller.unwatch(self._execution_id, interval_s)
            if first is not None:
                first.cancel()  # no longer wanted (a no-op once it answered)

    def _cannot_read_yet(self, error: Exception) -> None:
        # The storage is down (say, restarting): a wait outlives that; keep polling.
        self._rt.logger.warning(
            "Waiting for execution %s: cannot read it yet (%r); will retry",
            self._execution_id,
            error,
        )

    async def cancel(self) -> None:
        """Cancel the execution if it is still active; harmless if it already finished."""
        await cancel_in_runtime(self._rt, self._execution_id)

    def __repr__(self) -> str:
        return f"TaskHandle(task_id={self._task_id!r}, execution_id={self._execution_id!r})"


async def cancel_execution(
    storage: DurableStorage, execution_id: str, *, logger: logging.Logger | None = None
) -> bool:
    """Cancel an execution by id, from any process, without registering its task.

    The same guarded write as :meth:`TaskHandle.cancel`: an active execution becomes
    ``cancelled``; if it is running, the executor running it stops the attempt, and executors
    close its children as with any cancelled parent. Returns ``True`` if this call cancelled it,
    ``False`` if it had already finished; raises :class:`DurableExecutionNotFoundError` if no
    execution has that id (a handle's ``cancel()`` stays silent there, as in the reference).
    """
    transactions = TransactionRunner(storage, logger or logging.getLogger("durable_execution"))
    outcome = await write_cancellation(transactions, execution_id)
    if outcome == "not_found":
        raise DurableExecutionNotFoundError(f"Execution {execution_id} not found")
    return outcome == "cancelled"
