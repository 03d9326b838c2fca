"""Running one claimed attempt and storing what it produced.

Each attempt is one asyncio task. The user's function runs under ``asyncio.timeout(timeout_ms)``;
when the timeout fires or the execution is cancelled, the asyncio task is really cancelled, so an
async run function stops at its next ``await``. A sync run function runs in a worker thread
(``asyncio.to_thread``) so it cannot block the event loop; a thread cannot be interrupted, so a
timed-out or cancelled sync function keeps running in its thread until it returns (it can poll
``ctx.is_cancelled()``), and whatever it returns is discarded.

Every result write is guarded by ``status = running`` and the version the claim wrote, and
children or the finalize execution are inserted in the same transaction only if that guard
matched: a cancelled or re-claimed execution never gets a stale result or orphan children.

A run whose result cannot be stored because the storage is down keeps retrying the write with
backoff, its lease renewed meanwhile (a database restart does not lose a finished run). If the
write never gets through, that is not turned into a task failure: the row stays ``running`` and
the lease expiry re-runs it, as it would after a crash.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from durable_execution import clock
from durable_execution._coalescing import Coalescer
from durable_execution._local_runs import LocalRun
from durable_execution._options import (
    resolve_enqueue_options,
    retry_delay_ms,
    should_retry,
)
from durable_execution._records import descendant_links, new_record
from durable_execution._registry import loaded_input, storable_input, validated_input
from durable_execution._runtime import Runtime
from durable_execution._telemetry import attempt_span, current_trace_context, execution_finished
from durable_execution._transactions import is_transient, jittered
from durable_execution.errors import (
    DurableExecutionError,
    DurableExecutionNotFoundError,
    DurableExecutionTimedOutError,
    error_info_from_exception,
    task_exc_info,
    terminal_status_for,
)
from durable_execution.ids import generate_execution_id
from durable_execution.logs import enter_attempt, execution_extra
from durable_execution.model import TaskRef
from durable_execution.payloads import FinalizeTaskInput, ParentTaskOutput
from durable_execution.storage.types import (
    DurableStorageTx,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
    apply_update,
)
from durable_execution.tasks import (
    ChildTask,
    ParentTaskResult,
    TaskContext,
    TaskDefinition,
)

# Backoff of a result write that fails during a storage outage (see _write_persistently).
_STORE_RETRY_INITIAL_S: Final = 0.25
_STORE_RETRY_MAX_S: Final = 5.0


@dataclass(slots=True)
class _Outcome:
    """The write an attempt ends with, and what to do once it is committed.

    ``update`` carries the version it writes, the claimed one plus one (the record an attempt
    runs is its claim's, so ``record.version`` is the claimed version): built once, not copied.
    """

    update: TaskExecutionUpdate
    inserts: list[TaskExecutionRecord] = field(default_factory=list)
    finished: bool = False
    wake_at: list[datetime] = field(default_factory=list)
    # A failed attempt: the exception (logged with its traceback) and the retry's delay, if any.
    failure: BaseException | None = None
    retry_delay_ms: float | None = None


class _RaisedInThread(Exception):
    """Carries what a sync run function raised that is not an ``Exception`` (``SystemExit``,
    ``KeyboardInterrupt``, ``CancelledError``…) out of its thread: asyncio re-raises a
    ``SystemExit`` or ``KeyboardInterrupt`` out of the event loop, which would stop the whole
    executor for one task's failure."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


# Any: the run function's input and output types are erased in the registry (see TaskDefinition).
def _call_in_thread(run: Callable[[TaskContext, Any], Any], ctx: TaskContext, arg: object) -> Any:
    try:
        return run(ctx, arg)
    except Exception:
        raise
    except BaseException as error:
        # Raised by the task's own code: signals (Ctrl-C) are delivered to the main thread only.
        raise _RaisedInThread(error) from None


def _being_cancelled() -> bool:
    """Whether someone cancelled the running asyncio task (as opposed to a ``CancelledError``
    the task's code raised or let through from a task it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@dataclass(frozen=True, slots=True)
class _ResultWrite:
    """An attempt's write, guarded by ``running`` and the version its claim wrote."""

    execution_id: str
    claimed_version: int
    update: TaskExecutionUpdate
    inserts: list[TaskExecutionRecord]


async def _write_results(tx: DurableStorageTx, writes: Sequence[_ResultWrite]) -> list[bool]:
    """Each write whose guard matches; children or a finalize are inserted only for those."""
    if not writes:
        return []
    matched = await tx.update_task_executions_each(
        [
            (
                WhereByExecutionIds(
                    [write.execution_id], statuses=["running"], version=write.claimed_version
                ),
                write.update,
            )
            for write in writes
        ],
    )
    inserts = [row for write, n in zip(writes, matched, strict=True) if n for row in write.inserts]
    if inserts:
        await tx.insert_task_executions(inserts)
    return [n > 0 for n in matched]


def _one_statement(writes: Sequence[_ResultWrite]) -> bool:
    """Whether ``_write_results`` does ``writes`` in one statement: no children or finalize to
    insert, and no execution twice (a repeated id costs the batch update one more statement)."""
    return not any(write.inserts for write in writes) and len(
        {write.execution_id for write in writes}
    ) == len(writes)


class Runner:
    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        # Results of runs that finish together share a transaction.
        self._results: Coalescer[_ResultWrite, bool] = Coalescer(
            runtime.transactions,
            _write_results,
            max_batch=runtime.config.batch_size,
            single_statement=_one_statement,
        )

    def start(self, record: TaskExecutionRecord, definition: TaskDefinition) -> None:
        """Start the attempt ``record`` (already claimed, version = the claimed version)."""
        running = self._rt.running
        stale = running.get(record.execution_id)
        if stale is not None:
            # Our own earlier attempt whose lease expired: its result would be refused anyway.
            stale.request_cancel()
        logger = self._rt.logger
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "Execution %s of task %s claimed",
                record.execution_id,
                record.task_id,
                extra=execution_extra(
                    record.execution_id, record.task_id, record.retry_attempts, "running"
                ),
            )
        local = LocalRun(record.execution_id, record.version, record.expires_at)
        local.task = asyncio.create_task(
            self._run(local, record, definition), name=f"durable-execution:{record.execution_id}"
        )
        running[record.execution_id] = local

    async def _run(
        self, local: LocalRun, record: TaskExecutionRecord, definition: TaskDefinition
    ) -> None:
        # This asyncio task's own context: whatever the attempt logs carries its ids.
        enter_attempt(record.execution_id, record.task_id, record.retry_attempts)
        try:
            # The span is current while the task runs and its outcome is built, so the task's own
            # spans and the children it creates continue the trace of whoever enqueued it.
            with attempt_span(record) as span:
                outcome = await self._attempt(local, record, definition)
                if outcome is not None:
                    status = outcome.update.status or "running"
                    span.outcome(status, outcome.failure)
                    await self._store(local, record, outcome)
        except Exception:
            self._rt.logger.exception("Unexpected error running execution %s", record.execution_id)
        finally:
            local.cancel_event.set()
            if self._rt.running.get(record.execution_id) is local:
                del self._rt.running[record.execution_id]
            self._rt.ready_wakeup.set()  # a slot is free

    async def _attempt(
        self, local: LocalRun, record: TaskExecutionRecord, definition: TaskDefinition
    ) -> _Outcome | None:
        """Run the user's function once; the outcome to store, or None if nothing may be."""
        rt = self._rt
        ctx = TaskContext(
            task_id=record.task_id,
            execution_id=record.execution_id,
            attempt=record.retry_attempts,
            prev_error=record.error,
            cancelled=local.cancel_event,
            shutdown=rt.shutdown_event,
        )
        try:
            stored_input = rt.serializer.deserialize(record.run_input)
            run_input = loaded_input(definition, stored_input)
            if local.cancel_requested:
                return None
            timeout = asyncio.timeout(record.timeout_ms / 1000)
            local.in_user_code = True
            # Whatever the task's code raises is a failure of this attempt, stored with its
            # traceback; only the attempt's own cancellation (a cancel, a lease lost, a timeout)
            # and a KeyboardInterrupt in the event loop's thread (Ctrl-C) are not.
            try:
                async with timeout:
                    result = await self._invoke(definition, ctx, run_input)
            except asyncio.CancelledError as error:
                if local.cancel_requested or _being_cancelled():
                    raise
                return self._failure(record, error, raised_by_task=True)
            except _RaisedInThread as carrier:
                return self._failure(record, carrier.error, raised_by_task=True)
            except KeyboardInterrupt:
                raise
            except BaseException as error:
                if timeout.expired():
                    # The timeout's cancellation, turned into TimeoutError (or into whatever the
                    # task's code raised on being cancelled).
                    local.cancel_event.set()
                    raise DurableExecutionTimedOutError() from None
                return self._failure(record, error, raised_by_task=True)
            finally:
                local.in_user_code = False
            return await self._success(record, definition, stored_input, result)
        except asyncio.CancelledError as error:
            if local.cancel_requested:
                # We cancelled it: the row is cancelled (or re-claimed) already; nothing to store.
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                return None
            if _being_cancelled():
                raise  # by someone else (the event loop closing): not this attempt's outcome
            return self._failure(record, error)  # raised by a hook (load_input, a validator…)
        except KeyboardInterrupt:
            raise  # Ctrl-C in the event loop's thread stops the process, as it would without us
        except BaseException as error:
            # Anything else (SystemExit included) fails this attempt, never the whole executor.
            return self._failure(record, error)

    @staticmethod
    async def _invoke(definition: TaskDefinition, ctx: TaskContext, run_input: object) -> object:
        if definition.is_async:
            result: object = await definition.run(ctx, run_input)
            return result
        result = await asyncio.to_thread(_call_in_thread, definition.run, ctx, run_input)
        if inspect.isawaitable(result):  # a sync callable that returned a coroutine
            result = await result
        return result

    async def _success(
        self,
        record: TaskExecutionRecord,
        definition: TaskDefinition,
        stored_input: object,
        result: object,
    ) -> _Outcome:
        """Prepare the write of a successful attempt (still part of it: errors fail it).

        ``stored_input`` is the run input as stored (before ``load_input``): the finalize input
        carries that form, so that it serializes whatever the run input's type.
        """
        rt = self._rt
        serializer = rt.serializer
        if definition.shape == "parent":
            if not isinstance(result, ParentTaskResult):
                raise DurableExecutionError(
                    f"run_parent of task {definition.id} must return a ParentTaskResult, got"
                    f" {type(result).__name__}",
                    is_retryable=False,
                )
            output, children = result.output, tuple(result.children_tasks)
        else:
            output, children = result, ()
        run_output = serializer.serialize_limited(output, f"the output of task {definition.id}")
        now = clock.now()

        if children:
            inserts = [
                await self._child_record(record, index, child, now)
                for index, child in enumerate(children)
            ]
            return _Outcome(
                update=TaskExecutionUpdate(
                    updated_at=now,
                    version=record.version + 1,
                    status="waiting_for_children_tasks",
                    run_output=run_output,
                    children_tasks=tuple(
                        TaskRef(task_id=child.task_id, execution_id=child.execution_id)
                        for child in inserts
                    ),
                    unset_error=True,
                ),
                inserts=inserts,
                wake_at=[child.start_at for child in inserts],
            )

        finalize = definition.finalize
        if finalize is not None:
            finalize_input = FinalizeTaskInput(input=stored_input, output=output)
            root, parent = descendant_links(record, finalize=True)
            finalize_record = new_record(
                task_id=finalize.id,
                execution_id=generate_execution_id(),
                options=resolve_enqueue_options(finalize, None, default_priority=record.priority),
                run_input=serializer.serialize(finalize_input),
                now=now,
                root_task=root,
                parent_task=parent,
                trace_context=current_trace_context(),
            )
            return _Outcome(
                update=TaskExecutionUpdate(
                    updated_at=now,
                    version=record.version + 1,
                    status="waiting_for_finalize_task",
                    run_output=run_output,
                    children_tasks=(),
                    finalize_task=TaskRef(
                        task_id=finalize.id, execution_id=finalize_record.execution_id
                    ),
                    unset_error=True,
                ),
                inserts=[finalize_record],
                wake_at=[finalize_record.start_at],
            )

        final_output = (
            run_output
            if definition.shape == "simple"
            else serializer.serialize(ParentTaskOutput(output=output))
        )
        return _Outcome(
            update=TaskExecutionUpdate(
                updated_at=now,
                version=record.version + 1,
                status="completed",
                run_output=run_output,
                output=final_output,
                children_tasks=(),
                unset_error=True,
                finished_at=now,
            ),
            finished=True,
        )

    async def _child_record(
        self, parent: TaskExecutionRecord, index: int, child: object, now: datetime
    ) -> TaskExecutionRecord:
        if not isinstance(child, ChildTask):
            raise DurableExecutionError(
                f"Child {index} of task {parent.task_id} must be a ChildTask, got"
                f" {type(child).__name__}",
                is_retryable=False,
            )
        child_id = child.task.id
        definition = self._rt.registry.get(child_id)
        if definition is None:
            raise DurableExecutionNotFoundError(
                f"Child task {child_id} not found. Register it with this executor first"
            )
        # At the parent's priority unless the child's options say otherwise; never a key.
        options = resolve_enqueue_options(
            definition, child.options, default_priority=parent.priority, child=True
        )
        validated = await validated_input(definition, child.input)
        # Refused here, before anything is stored: the parent's attempt fails, naming the child.
        run_input = self._rt.serializer.serialize_limited(
            storable_input(definition, validated),
            f"the input of child {index} (task {child_id}) of task {parent.task_id}",
        )
        root, parent_ref = descendant_links(parent, finalize=False)
        return new_record(
            task_id=child_id,
            execution_id=generate_execution_id(),
            options=options,
            run_input=run_input,
            now=now,
            root_task=root,
            parent_task=parent_ref,
            trace_context=current_trace_context(),
        )

    def _failure(
        self, record: TaskExecutionRecord, error: BaseException, *, raised_by_task: bool = False
    ) -> _Outcome:
        info = error_info_from_exception(error, raised_by_task=raised_by_task)
        now = clock.now()
        if should_retry(record.retry_options, record.retry_attempts, info.is_retryable):
            delay = retry_delay_ms(record.retry_options, record.retry_attempts)
            start_at = clock.truncate_to_ms(now + timedelta(milliseconds=delay))
            return _Outcome(
                update=TaskExecutionUpdate(
                    updated_at=now,
                    version=record.version + 1,
                    status="ready",
                    error=info,
                    retry_attempts=record.retry_attempts + 1,
                    start_at=start_at,
                    unset_expires_at=True,
                ),
                wake_at=[start_at],
                failure=error,
                retry_delay_ms=delay,
            )
        return _Outcome(
            update=TaskExecutionUpdate(
                updated_at=now,
                version=record.version + 1,
                status=terminal_status_for(info),
                error=info,
                finished_at=now,
            ),
            finished=True,
            failure=error,
        )

    async def _store(self, local: LocalRun, record: TaskExecutionRecord, outcome: _Outcome) -> None:
        execution_id = record.execution_id
        update = outcome.update  # built with the version it writes (see _Outcome), so normally
        if update.version != local.claimed_version + 1:  # not copied: this is a fallback
            update = replace(update, version=local.claimed_version + 1)
        write = _ResultWrite(
            execution_id=execution_id,
            claimed_version=local.claimed_version,
            update=update,
            inserts=outcome.inserts,
        )
        stored = await self._write_persistently(local, record, write)
        if stored is None:
            return
        if not stored:
            self._rt.logger.debug(
                "Result of execution %s dropped: it is no longer this attempt's", execution_id
            )
            return
        log_outcome(self._rt.logger, record, outcome)
        if outcome.finished:
            execution_finished(record.task_id, outcome.update.status or "completed")
            # The guarded write matched, so the row is now exactly the claimed one plus it.
            committed = apply_update(record, write.update)
            self._rt.executions_finished([execution_id], {execution_id: committed})
        if outcome.wake_at:
            self._rt.wake_ready_at(outcome.wake_at)

    async def _write_persistently(
        self,
        local: LocalRun,
        record: TaskExecutionRecord,
        write: _ResultWrite,
    ) -> bool | None:
        """Commit the result ``write`` (sharing a transaction with other runs' results), riding
        out a storage outage; None if it never got through.

        A result is the one thing a run produces that cannot be produced again for free, so
        transient failures are retried with backoff until the write gets through or is refused
        by its guard (another executor expired the lease and re-ran the execution meanwhile),
        this attempt is cancelled, or shutdown is requested (shutdown cuts the pause short for
        one last try). The lease is renewed meanwhile (see ``_leases``), so an outage longer
        than the lease does not lose a finished run unless another executor took the row over.
        Giving up leaves the row running; its lease expiry re-runs it, as after a crash.
        """
        rt = self._rt
        local.storing_result = True
        backoff_s = _STORE_RETRY_INITIAL_S
        while True:
            try:
                return await self._results.submit(write)
            except Exception as error:
                hopeless = (
                    not is_transient(error) or local.cancel_requested or rt.shutdown_requested
                )
                if hopeless:
                    rt.logger.exception(
                        "Could not store the result of execution %s; it stays running until its"
                        " lease expires and is then retried",
                        record.execution_id,
                    )
                    return None
                # Once per write at warning level: an outage must not flood the log.
                rt.logger.log(
                    logging.WARNING if backoff_s == _STORE_RETRY_INITIAL_S else logging.DEBUG,
                    "Could not store the result of execution %s yet (%r); retrying in about %.1f s",
                    record.execution_id,
                    error,
                    backoff_s,
                )
                await rt.sleep(jittered(backoff_s), rt.shutdown_event)
                backoff_s = min(backoff_s * 2, _STORE_RETRY_MAX_S)


def log_outcome(logger: logging.Logger, record: TaskExecutionRecord, outcome: _Outcome) -> None:
    """Say what the attempt's committed write did: a retry at INFO, a final failure at WARNING
    (with the traceback of what the task raised), anything else at DEBUG."""
    update = outcome.update
    status = update.status or "running"
    error = update.error
    if error is None or outcome.failure is None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "Execution %s of task %s: %s",
                record.execution_id,
                record.task_id,
                status,
                extra=execution_extra(
                    record.execution_id, record.task_id, record.retry_attempts, status
                ),
            )
        return
    if outcome.retry_delay_ms is not None:
        logger.info(
            "Execution %s of task %s failed: %s; retry %d of %d in %.0f ms",
            record.execution_id,
            record.task_id,
            error.message,
            record.retry_attempts + 1,
            record.retry_options.max_attempts,
            outcome.retry_delay_ms,
            extra=execution_extra(
                record.execution_id,
                record.task_id,
                record.retry_attempts,
                status,
                retry_delay_ms=outcome.retry_delay_ms,
            ),
        )
        return
    logger.warning(
        "Execution %s of task %s %s: %s",
        record.execution_id,
        record.task_id,
        _FINISHED_VERBS.get(status, status),
        error.message,
        exc_info=None if error.traceback is None else task_exc_info(outcome.failure),
        extra=execution_extra(record.execution_id, record.task_id, record.retry_attempts, status),
    )


_FINISHED_VERBS: Final = {"failed": "failed", "timed_out": "timed out", "cancelled": "cancelled"}
