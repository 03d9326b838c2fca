"""The storage contract: what the executor asks of every backend.

A storage opens transactions; a transaction offers the operations the executor performs, each
named for its purpose (insert executions, claim ready ones, renew and expire leases, write a
batch of guarded updates, read by ids, close finished ones, cancel, prune, fire schedules),
each one statement or a few on the bundled backends: there is no generic "select by filter"
and no second, row-by-row path. Everything here is a frozen dataclass.

Semantics every backend honours (the contract tests check them):

* Reads by id return rows in insertion order; a read's ``limit`` is >= 1.
* ``version`` in a ``where`` is an optimistic-locking guard; ``version`` in an update writes it.
* In an update, ``None`` means "leave unchanged"; ``unset_error``/``unset_expires_at`` clear.
* Operations documented as locking lock the rows they return until the transaction ends and skip
  rows that other transactions hold; backends that serialise write transactions (SQLite) need
  no row locks.
* Inserting an ``execution_id`` that exists raises :class:`DuplicateExecutionIdError` and the
  transaction stores nothing: a caller that catches the error finds every later call in the
  transaction, and the end of its block, raising it again (never a silent commit or rollback).
* A record whose ``(task_id, idempotency_key)`` is already held (any status) is not inserted:
  the insert returns the holder's execution id in its place (see ``insert_task_executions``).

Optional, each a protocol checked with ``isinstance``: ``ReadyWatchingStorage`` (cross-process
wake-ups instead of idle polling), ``SingleStatementStorage`` (one-statement transactions
without BEGIN and COMMIT), ``InspectableStorage`` (operators' read-only queries) and
``InspectableSchedulesStorage`` (the schedules, for the CLI).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol, runtime_checkable

from durable_execution.model import (
    ChildTaskError,
    ExecutionErrorInfo,
    ParentTaskRef,
    RetryOptions,
    TaskExecutionStatus,
    TaskRef,
)
from durable_execution.storage.errors import MalformedRowError


@dataclass(frozen=True, slots=True)
class TaskExecutionRecord:
    """One stored execution: a top-level, child or finalize execution are all one row."""

    task_id: str
    execution_id: str
    retry_options: RetryOptions
    sleep_ms_before_run: int
    timeout_ms: int
    run_input: str
    status: TaskExecutionStatus
    start_at: datetime
    created_at: datetime
    updated_at: datetime
    root_task: TaskRef | None = None
    parent_task: ParentTaskRef | None = None
    run_output: str | None = None
    output: str | None = None
    children_tasks_completed_count: int = 0
    children_tasks: tuple[TaskRef, ...] | None = None
    children_tasks_errors: tuple[ChildTaskError, ...] | None = None
    finalize_task: TaskRef | None = None
    finalize_task_error: ExecutionErrorInfo | None = None
    error: ExecutionErrorInfo | None = None
    is_closed: bool = False
    needs_promise_cancellation: bool = False
    retry_attempts: int = 0
    # Times the lease of a running attempt expired and the row was made ready again.
    lease_expiries: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    version: int = 0
    # The execution this one reruns (`durable-execution rerun`): same task, same input.
    rerun_of: str | None = None
    # The W3C trace context of the enqueuer (JSON text, see _telemetry); written once at insert.
    trace_context: str | None = None
    # The queue of its task; only executors serving that queue claim it.
    queue: str = "default"
    # Per-key concurrency limit (both set or both None): at most concurrency_limit executions of
    # this task_id with this key run at once, across executors; '' is the key of executions
    # enqueued without one (they share one pool per task). Written once at insert.
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    # Set only on top-level executions enqueued with one: (task_id, idempotency_key) names at most
    # one stored execution (see DurableStorageTx.insert_task_executions). Written once at insert.
    idempotency_key: str | None = None
    # Claims take higher priorities first, FIFO by start_at within one. Written once at insert.
    priority: int = 0


@dataclass(frozen=True, slots=True)
class WhereByExecutionIds:
    """The rows one guarded update writes: those of ``execution_ids`` that still match every
    guard given (``None`` ignores a guard; ``False`` is a value like any other)."""

    execution_ids: Sequence[str]
    statuses: Sequence[TaskExecutionStatus] | None = None
    needs_promise_cancellation: bool | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class TaskExecutionUpdate:
    """A partial update: ``None`` leaves a field as it is."""

    updated_at: datetime
    run_output: str | None = None
    output: str | None = None
    children_tasks_completed_count: int | None = None
    children_tasks: tuple[TaskRef, ...] | None = None
    children_tasks_errors: tuple[ChildTaskError, ...] | None = None
    finalize_task: TaskRef | None = None
    finalize_task_error: ExecutionErrorInfo | None = None
    error: ExecutionErrorInfo | None = None
    unset_error: bool = False
    status: TaskExecutionStatus | None = None
    is_closed: bool | None = None
    needs_promise_cancellation: bool | None = None
    retry_attempts: int | None = None
    lease_expiries: int | None = None
    start_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    unset_expires_at: bool = False
    version: int | None = None


# apply_update runs several times per execution, so it works on positional tuples through
# C-level attrgetters: a third faster than dataclasses.replace with keyword changes.
_RECORD_FIELDS: Final = tuple(f.name for f in dataclasses.fields(TaskExecutionRecord))
_record_values: Final = operator.attrgetter(*_RECORD_FIELDS)
# Update fields copied as they are when not None; the unset flags are handled apart.
_PLAIN_UPDATE_FIELDS: Final = tuple(
    f.name
    for f in dataclasses.fields(TaskExecutionUpdate)
    if f.name not in ("unset_error", "unset_expires_at")
)
_plain_update_values: Final = operator.attrgetter(*_PLAIN_UPDATE_FIELDS)
_PLAIN_UPDATE_POSITIONS: Final = tuple(_RECORD_FIELDS.index(name) for name in _PLAIN_UPDATE_FIELDS)
_ERROR_POSITION: Final = _RECORD_FIELDS.index("error")
_EXPIRES_AT_POSITION: Final = _RECORD_FIELDS.index("expires_at")


def apply_update(record: TaskExecutionRecord, update: TaskExecutionUpdate) -> TaskExecutionRecord:
    """The record after ``update``: ``None`` leaves a field, ``unset_*`` clears one (and wins)."""
    values = list(_record_values(record))
    for position, value in zip(_PLAIN_UPDATE_POSITIONS, _plain_update_values(update), strict=True):
        if value is not None:
            values[position] = value
    if update.unset_error:
        values[_ERROR_POSITION] = None
    if update.unset_expires_at:
        values[_EXPIRES_AT_POSITION] = None
    return TaskExecutionRecord(*values)


@dataclass(frozen=True, slots=True)
class ClaimedTaskExecutions:
    """What one set-based claim moved from ``ready`` to ``running``.

    ``records`` are the claimed rows as they now are, highest ``priority`` first, then oldest
    ``start_at`` first (ties by insertion). ``malformed`` are rows the claim also moved to
    ``running`` but that cannot be decoded (poison rows): the caller must set them aside (fail
    them) in the same transaction.
    """

    records: list[TaskExecutionRecord]
    malformed: list[MalformedRowError]


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A running attempt as its executor knows it: the row's id and the version its claim wrote."""

    execution_id: str
    version: int


@dataclass(frozen=True, slots=True)
class TaskExecutionCancel:
    """A user's cancel of one execution (``cancel_task_execution``), guarded by the ``status``
    and ``version`` its reader saw; ``needs_promise_cancellation`` asks the executor running the
    attempt to stop it (false when the caller runs it and stops it itself)."""

    execution_id: str
    status: TaskExecutionStatus
    version: int
    error: ExecutionErrorInfo
    needs_promise_cancellation: bool
    now: datetime


@dataclass(frozen=True, slots=True)
class PruneCursor:
    """Where a prune walk stands: after the top-level execution that finished at
    ``finished_at`` with storage id ``row_id`` (the walk's order is ``finished_at``, then id)."""

    finished_at: datetime
    row_id: int


@dataclass(frozen=True, slots=True)
class PrunedBatch:
    """What one batch of a prune found: ``trees`` top-level executions and, per status, the
    executions in their trees (deleted, or only counted in a dry run); ``cursor`` is the last
    root the batch saw (``None`` when it found none: the walk is over)."""

    trees: int
    executions_by_status: dict[TaskExecutionStatus, int]
    cursor: PruneCursor | None


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """One stored schedule (``executor.schedule``): its definition and where its ticks stand.

    Exactly one of ``cron`` (a 5-field expression read in ``timezone``, an IANA zone name) and
    ``every_ms`` is set. ``next_tick_at`` is the next tick to fire; ``last_tick_at`` and
    ``last_execution_id`` say which tick fired last and the execution it created.
    """

    schedule_id: str
    task_id: str
    cron: str | None
    every_ms: int | None
    timezone: str
    run_input: str
    next_tick_at: datetime
    created_at: datetime
    updated_at: datetime
    last_tick_at: datetime | None = None
    last_execution_id: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleTickAdvance:
    """Firing one tick: move the schedule from ``expected_next_tick_at`` (the tick the caller
    read) to ``next_tick_at``, recording ``tick_at`` and the execution it created."""

    schedule_id: str
    expected_next_tick_at: datetime
    next_tick_at: datetime
    tick_at: datetime
    execution_id: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ScheduleListing:
    """A schedule as the CLI lists it: with the status of its last execution (``None`` when it
    has none, or that execution was pruned)."""

    schedule: ScheduleRecord
    last_execution_status: TaskExecutionStatus | None


class DurableStorageTx(Protocol):
    """One open transaction. Never shared between tasks; never nested."""

    async def insert_task_executions(self, executions: Sequence[TaskExecutionRecord]) -> list[str]:
        """Insert ``executions``; the execution id that stands for each, in the order given.

        The records are taken in order. One with an ``idempotency_key`` whose
        ``(task_id, idempotency_key)`` is already held — by a stored execution in any status,
        one committed meanwhile by a concurrent transaction, or an earlier record of this call —
        is not inserted, and its result is the holder's execution id (it is not compared with
        the holder in any other way). Every other record is inserted and its result is its own
        id. If one of those has an ``execution_id`` that is stored or repeats an earlier
        inserted record's, :class:`DuplicateExecutionIdError` is raised and the transaction
        stores nothing.
        """
        ...

    async def get_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        """The stored executions with these ids, in insertion order (unknown ids are left out,
        a repeated id is returned once). What handles, cancels, the closing of parents, the CLI
        and a retried insert read."""
        ...

    async def get_finished_task_execution_ids(self, execution_ids: Sequence[str]) -> list[str]:
        """Those of ``execution_ids`` whose execution is finished (any finished status), in
        insertion order: what waiting handles poll, without reading whole rows."""
        ...

    async def get_expired_task_executions(
        self, *, now: datetime, limit: int
    ) -> list[TaskExecutionRecord]:
        """Running, unclosed executions whose lease expired (``expires_at < now``): up to
        ``limit`` (>= 1), oldest ``updated_at`` first (ties by insertion), locked until the
        transaction ends, skipping rows that other transactions hold. The lease expirer reads
        them and writes each back guarded by the version it read."""
        ...

    async def get_finished_unclosed_task_executions(
        self, *, limit: int, execution_ids: Sequence[str] | None = None
    ) -> list[TaskExecutionRecord]:
        """Finished executions not yet closed (their effect on their parent and descendants not
        yet applied): up to ``limit`` (>= 1), oldest ``updated_at`` first (ties by insertion),
        locked until the transaction ends, skipping rows that other transactions hold. With
        ``execution_ids``, only those among them (the closer's one-by-one fallback)."""
        ...

    async def get_finished_unclosed_task_execution_ids(self, *, limit: int) -> list[str]:
        """The ids :meth:`get_finished_unclosed_task_executions` would return, without locking
        or decoding the rows: what the closer reads when a row of the batch cannot be decoded."""
        ...

    async def close_task_executions(self, execution_ids: Sequence[str], *, now: datetime) -> int:
        """Mark these executions closed (``is_closed``, ``updated_at = now``); the number of
        rows changed."""
        ...

    async def postpone_closing_task_executions(
        self, execution_ids: Sequence[str], *, now: datetime
    ) -> int:
        """Set ``updated_at = now`` and nothing else, so that the oldest-first walk of
        :meth:`get_finished_unclosed_task_executions` moves past these rows (their parent's task
        is not registered with this executor); the number of rows changed."""
        ...

    async def cancel_task_execution(self, cancel: TaskExecutionCancel) -> bool:
        """Cancel ``cancel.execution_id`` if it still has the ``status`` and ``version`` its
        reader saw: ``status = cancelled``, ``error``, ``needs_promise_cancellation``,
        ``finished_at = updated_at = now``, ``version + 1``. Whether it matched (a row that
        changed meanwhile is read again by the caller)."""
        ...

    async def cancel_active_task_executions(
        self,
        execution_ids: Sequence[str],
        *,
        error: ExecutionErrorInfo,
        now: datetime,
        running_here: Collection[str],
    ) -> list[str]:
        """Cancel those of ``execution_ids`` that are still active (the descendants of an
        execution that did not complete): ``status = cancelled``, ``error``, ``finished_at =
        updated_at = now``; ``needs_promise_cancellation`` is set except for the ids in
        ``running_here`` (their attempts run in the caller's process, which stops them itself).
        The version is left as it is: the write only leaves active statuses, and every other
        write is guarded by the status it read. Returns the ids cancelled, in any order."""
        ...

    async def take_cancellation_requests(
        self, execution_ids: Sequence[str], *, now: datetime, limit: int
    ) -> list[str]:
        """Of ``execution_ids`` (attempts running in the caller's process), up to ``limit``
        (>= 1) whose row asks for their attempt to be stopped (``needs_promise_cancellation``):
        clear the flag (``updated_at = now``) and return their ids, in any order (the oldest
        are taken first). Rows that other transactions hold are skipped (taken by a later
        call)."""
        ...

    async def fail_unreadable_task_execution(
        self, execution_id: str, *, error: ExecutionErrorInfo, now: datetime
    ) -> bool:
        """Quarantine a row that cannot be decoded (its ``MalformedRowError``), if it is still
        active: ``status = failed``, ``error`` (replacing the stored one, which may be what is
        damaged), ``started_at = finished_at = updated_at = now``, no ``expires_at``. The write
        decodes nothing. Whether the row was active."""
        ...

    async def claim_ready_task_executions(
        self,
        *,
        now: datetime,
        limit: int,
        lease_ms: int,
        queues: Sequence[str] | None = None,
    ) -> ClaimedTaskExecutions:
        """Claim ready executions in one set-based step.

        Take up to ``limit`` (>= 1) rows with ``status = ready`` and ``start_at <= now`` whose
        ``queue`` is one of ``queues`` (``None``: any queue), highest ``priority`` first and,
        within a priority, oldest ``start_at`` first (ties by insertion), skipping rows that
        other transactions hold and rows whose concurrency key is full: a row with a
        ``concurrency_limit`` is taken only while fewer than that many rows of its
        ``(task_id, concurrency_key)`` are ``running`` (counting those this claim takes, in claim
        order; the smallest limit among the key's waiting rows applies), whatever other
        transactions claim at the same time. Rows of a full key are passed over, not in the way
        of later rows. Set
        ``status = running``, ``started_at = updated_at = now``, ``expires_at = now + lease_ms``
        (whatever the row's ``timeout_ms``: the executor renews the lease while the attempt
        runs, see :meth:`renew_task_execution_leases`) and ``version = version + 1``; return
        them. ``now`` is an aware datetime with whole milliseconds.
        """
        ...

    async def renew_task_execution_leases(
        self, leases: Sequence[HeldLease], *, expires_at: datetime
    ) -> list[str]:
        """Renew the leases of many running attempts in one statement.

        For each of ``leases`` (distinct execution ids) whose row is still ``running`` with
        exactly that ``version``, set ``expires_at`` to the given aware datetime (whole
        milliseconds) and nothing else: not ``version`` (the attempt's result write is guarded
        by the version its claim wrote and must keep matching), not ``updated_at`` (a renewal is
        not a change of state). Return the execution ids renewed, in any order. A row that moved
        on (finished, cancelled, expired and claimed again) is left alone, so a renewal never
        revives another attempt's row.
        """
        ...

    async def update_task_executions_each(
        self, updates: Sequence[tuple[WhereByExecutionIds, TaskExecutionUpdate]]
    ) -> list[int]:
        """Many independent guarded updates in one call (one round trip where the backend can):
        the writes of attempts' results, lease releases and expiries, parents' progress.

        Each item updates the rows of ``where.execution_ids`` that still match its guards
        (``statuses``, ``needs_promise_cancellation`` and ``version`` when not ``None``) with
        the fields of its update (see :class:`TaskExecutionUpdate`). The items are applied in
        order, each seeing the writes of those before it; the result is the number of rows each
        one changed, in the order given.
        """
        ...

    async def prune_batch(
        self,
        *,
        finished_before: datetime,
        statuses: Sequence[TaskExecutionStatus],
        after: PruneCursor | None,
        limit: int,
        dry_run: bool,
    ) -> PrunedBatch:
        """Retention: delete (or count) whole trees of finished executions, one batch.

        Takes up to ``limit`` (>= 1) top-level executions after ``after`` (``None``: from the
        start), in ``finished_at`` then insertion order, that finished before
        ``finished_before`` with one of ``statuses`` (finished statuses), are closed, and whose
        every descendant (children, finalize executions, chain steps at any depth) is finished
        and closed; deletes each such tree whole (never part of a tree, never an active
        execution) — or, with ``dry_run``, only counts it. Rows that other transactions hold are
        skipped.
        """
        ...

    async def try_lock_pruning(self) -> bool:
        """Take the database-wide pruning lock for the rest of this transaction, without
        waiting; ``False`` if another transaction holds it. Automatic retention takes it before
        each batch so that executors sharing a database prune one at a time (an advisory lock
        on PostgreSQL; SQLite's write lock, which every transaction there takes anyway)."""
        ...

    async def register_task_schedules(self, schedules: Sequence[ScheduleRecord]) -> None:
        """Store the schedules an executor defines (at its start), each by ``schedule_id``.

        A new id is inserted as given. An existing one takes the given ``task_id``,
        ``run_input``, ``cron``, ``every_ms``, ``timezone`` and ``updated_at``, and the given
        ``next_tick_at`` only if its timing (``cron``, ``every_ms``, ``timezone``) changed; it
        keeps its ``created_at``, ``last_tick_at`` and ``last_execution_id``. (An unchanged
        schedule keeps its next tick, so a tick missed while no executor ran is caught up.)
        """
        ...

    async def get_task_schedules(self, schedule_ids: Sequence[str]) -> list[ScheduleRecord]:
        """The stored schedules with these ids, ordered by id (unknown ids are left out)."""
        ...

    async def advance_task_schedule(self, advance: ScheduleTickAdvance) -> bool:
        """Fire a tick (compare-and-set): if the schedule's ``next_tick_at`` still equals
        ``advance.expected_next_tick_at``, set ``next_tick_at``, ``last_tick_at`` (=
        ``tick_at``), ``last_execution_id`` and ``updated_at`` and return ``True``; otherwise
        change nothing and return ``False`` (another transaction fired that tick first).

        The executor inserts the tick's execution in the same transaction only when this
        returned ``True``, so each tick creates exactly one execution however many executors
        race for it. A concurrent transaction that advanced the row first makes this one
        match nothing (PostgreSQL re-checks the guard against the committed row).
        """
        ...


class DurableStorage(Protocol):
    """A place executions live. ``transaction()`` commits on normal exit, rolls back on error.

    Several transactions may be open at once (from concurrent asyncio tasks); a backend that
    cannot run them in parallel must queue them, never fail them.
    """

    def transaction(self) -> AbstractAsyncContextManager[DurableStorageTx]: ...


@runtime_checkable
class ReadyWatchingStorage(Protocol):
    """Optional: a storage that can tell this process when other processes made work ready.

    Without it an executor finds work enqueued elsewhere by its idle polling (every
    ``background_process_intra_batch_sleep_ms``); with it, at once. While the context is open,
    ``on_ready`` is called (on the event loop) soon after any process commits an execution that is
    ready now — and also whenever the watch had to reconnect, since notices sent meanwhile were
    lost. A spurious call is harmless: the executor only looks for work. Entering the context
    returns once the watch is listening; a storage that cannot listen right now still returns
    (and keeps trying): watching is an optimisation, never a reason for an executor not to start.
    """

    def watch_ready(self, on_ready: Callable[[], None]) -> AbstractAsyncContextManager[None]: ...


@runtime_checkable
class SingleStatementStorage(Protocol):
    """Optional: a storage that runs a transaction of exactly one statement without ``BEGIN``
    and ``COMMIT`` (the statement is its own transaction: all of it or nothing is stored).

    On a client-server database that saves two of a short transaction's three round trips. The
    executor uses it only for work that is one statement whatever happens (a coalesced insert,
    a batch of result updates without repeated ids), and never for a retry, which may need to
    read first. A second statement in such a transaction raises
    :class:`~durable_execution.storage.errors.StorageError` before it is sent.
    """

    def single_statement(self) -> AbstractAsyncContextManager[DurableStorageTx]: ...


@runtime_checkable
class InspectableStorage(Protocol):
    """Optional read-only queries for operators: what ``durable-execution list``/``stats`` use.

    Not part of the contract the executor needs (a storage without them still runs
    everything); the bundled backends implement them. Each call reads committed data in a
    transaction of its own.

    * ``list_task_executions``: newest first (insertion order, backwards), ``offset`` rows
      skipped, at most ``limit`` (>= 0) returned. ``statuses=None`` means any status;
      ``top_level_only`` keeps executions without a parent; ``created_from`` (inclusive) and
      ``created_before`` (exclusive, both aware) bound ``created_at``. ``before_execution_id``
      is a keyset cursor: only executions inserted before that one (an execution that no longer
      exists gives an empty page). Pass the last id of one page to get the next: unlike
      ``offset``, its cost does not grow with the page number.
    * ``count_task_executions_by_status``: only statuses with at least one execution appear.
    * ``get_oldest_ready_task_execution``: the ``ready`` execution with the earliest
      ``start_at`` (ties by insertion), due or not; ``None`` if none is ready.

    A row that cannot be decoded is returned as the :class:`MalformedRowError` that says why, in
    its place: one damaged row must not hide the others from the operator looking for it.
    """

    async def list_task_executions(
        self,
        *,
        statuses: Sequence[TaskExecutionStatus] | None = None,
        task_id: str | None = None,
        top_level_only: bool = False,
        limit: int,
        offset: int = 0,
        before_execution_id: str | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Sequence[TaskExecutionRecord | MalformedRowError]: ...

    async def count_task_executions_by_status(
        self, *, task_id: str | None = None, top_level_only: bool = False
    ) -> dict[TaskExecutionStatus, int]: ...

    async def get_oldest_ready_task_execution(
        self, *, task_id: str | None = None
    ) -> TaskExecutionRecord | MalformedRowError | None: ...


@runtime_checkable
class InspectableSchedulesStorage(Protocol):
    """Optional, like :class:`InspectableStorage` (a protocol of its own, so that a storage
    written before schedules existed still passes that one): what ``durable-execution
    schedules`` reads, in a transaction of its own. The bundled backends implement it."""

    async def list_task_schedules(self) -> Sequence[ScheduleListing]:
        """Every stored schedule, ordered by id, with its last execution's status."""
        ...
