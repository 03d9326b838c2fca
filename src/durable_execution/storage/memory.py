"""A storage that keeps executions in this process's memory: for tests, demos and single runs.

Transactions are serialised with one lock, so every transaction sees a consistent snapshot and
the locking reads have nothing to skip. Records are frozen dataclasses, so a write replaces
a record instead of changing it; each transaction keeps an undo log of the records it replaced and
restores them if it fails, so a rolled-back transaction leaves nothing behind and a committed one
costs O(rows written), not O(table).

Secondary indexes keep the executor's hot queries from scanning the whole table: rows are grouped
by ``(status, is_closed)``, and each row remembers its insertion sequence for ordering.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from durable_execution.model import (
    FINISHED_STATUSES,
    TaskExecutionStatus,
)
from durable_execution.storage import _schedule_rows, claiming, conversion, inspection
from durable_execution.storage._memory_closing import FINISHED, InMemoryClosingMethods
from durable_execution.storage.errors import (
    DuplicateExecutionIdError,
    StorageError,
)
from durable_execution.storage.types import (
    ClaimedTaskExecutions,
    DurableStorageTx,
    HeldLease,
    PruneCursor,
    PrunedBatch,
    ScheduleListing,
    ScheduleRecord,
    ScheduleTickAdvance,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
    apply_update,
)

_IndexKey = tuple[TaskExecutionStatus, bool]


class _Table:
    """The committed rows plus the indexes derived from them."""

    def __init__(self) -> None:
        self.rows: dict[str, TaskExecutionRecord] = {}
        self.sequence: dict[str, int] = {}
        self.by_status: dict[_IndexKey, dict[str, None]] = {}
        # (task_id, idempotency_key) -> the execution holding it (the SQL unique index).
        self.by_key: dict[tuple[str, str], str] = {}
        self.next_sequence = 0
        self.schedules: dict[str, ScheduleRecord] = {}  # by schedule_id

    def put(self, record: TaskExecutionRecord) -> None:
        execution_id = record.execution_id
        old = self.rows.get(execution_id)
        if old is not None:
            self._unindex(old)
        else:
            self.sequence[execution_id] = self.next_sequence
            self.next_sequence += 1
        self.rows[execution_id] = record
        self.by_status.setdefault((record.status, record.is_closed), {})[execution_id] = None
        if record.idempotency_key is not None:
            self.by_key[(record.task_id, record.idempotency_key)] = execution_id

    def delete(self, execution_id: str) -> None:
        old = self.rows.pop(execution_id)
        self._unindex(old)
        del self.sequence[execution_id]

    def _unindex(self, record: TaskExecutionRecord) -> None:
        bucket = self.by_status[(record.status, record.is_closed)]
        del bucket[record.execution_id]
        if record.idempotency_key is not None:
            del self.by_key[(record.task_id, record.idempotency_key)]

    def with_statuses(
        self, statuses: Iterable[TaskExecutionStatus], is_closed: bool | None
    ) -> Iterable[TaskExecutionRecord]:
        closed_values = (False, True) if is_closed is None else (is_closed,)
        for status in dict.fromkeys(statuses):
            for closed in closed_values:
                for execution_id in self.by_status.get((status, closed), ()):
                    yield self.rows[execution_id]


def _matches_guards(record: TaskExecutionRecord, where: WhereByExecutionIds) -> bool:
    if where.statuses is not None and record.status not in where.statuses:
        return False
    if (
        where.needs_promise_cancellation is not None
        and record.needs_promise_cancellation != where.needs_promise_cancellation
    ):
        return False
    return where.version is None or record.version == where.version


class InMemoryStorageTx(InMemoryClosingMethods):
    """One transaction over an :class:`InMemoryStorage`; valid only inside its ``async with``."""

    def __init__(self, table: _Table) -> None:
        self._table = table
        # execution_id -> the committed record it replaced (None: the row was inserted).
        self._undo: dict[str, TaskExecutionRecord | None] = {}
        self._open = True
        self._refused_ids: list[str] | None = None  # set by an insert refused as duplicate
        self._deleted_sequence: dict[str, int] = {}  # execution_id -> its place, if deleted
        # schedule_id -> the committed schedule it replaced (None: the schedule was inserted).
        self._schedule_undo: dict[str, ScheduleRecord | None] = {}

    def _check_open(self) -> None:
        if not self._open:
            raise StorageError("The transaction is over; open a new one")
        self.raise_if_refused()

    def raise_if_refused(self) -> None:
        """A refused insert dooms the transaction (the contract: it stores nothing), as it does
        on PostgreSQL: later calls and the end of the block raise the refusal again, so a caller
        that caught it cannot commit the transaction's other writes by accident."""
        if self._refused_ids is not None:
            raise DuplicateExecutionIdError(self._refused_ids)

    def _write(self, record: TaskExecutionRecord) -> None:
        execution_id = record.execution_id
        if execution_id not in self._undo:
            self._undo[execution_id] = self._table.rows.get(execution_id)
        self._table.put(record)

    def _delete(self, record: TaskExecutionRecord) -> None:
        execution_id = record.execution_id
        if execution_id not in self._undo:
            self._undo[execution_id] = record
        # A rollback puts the row back where it was in insertion order.
        self._deleted_sequence.setdefault(execution_id, self._table.sequence[execution_id])
        self._table.delete(execution_id)

    def _finish(self, *, commit: bool) -> None:
        self._open = False
        if commit:
            return
        table = self._table
        for schedule_id, old_schedule in self._schedule_undo.items():
            if old_schedule is None:
                table.schedules.pop(schedule_id, None)
            else:
                table.schedules[schedule_id] = old_schedule
        for execution_id, old in self._undo.items():
            if old is None:
                if execution_id in table.rows:
                    table.delete(execution_id)
            else:
                table.put(old)
                if execution_id in self._deleted_sequence:
                    table.sequence[execution_id] = self._deleted_sequence[execution_id]

    def _by_ids(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        """The stored records of these ids, in insertion order (each once)."""
        table = self._table
        found = [
            record
            for execution_id in dict.fromkeys(execution_ids)
            if (record := table.rows.get(execution_id)) is not None
        ]
        return sorted(found, key=lambda r: table.sequence[r.execution_id])

    def _row(self, execution_id: str) -> TaskExecutionRecord | None:
        return self._table.rows.get(execution_id)

    def _finished_unclosed(self) -> Iterable[TaskExecutionRecord]:
        return self._table.with_statuses(FINISHED_STATUSES, is_closed=False)

    def _oldest_updated(
        self, candidates: Iterable[TaskExecutionRecord], limit: int
    ) -> list[TaskExecutionRecord]:
        """Up to ``limit`` of ``candidates``, oldest ``updated_at`` first (ties by insertion)."""
        limit = conversion.positive_limit(limit)
        sequence = self._table.sequence
        return heapq.nsmallest(
            limit, candidates, key=lambda r: (r.updated_at, sequence[r.execution_id])
        )

    async def insert_task_executions(self, executions: Sequence[TaskExecutionRecord]) -> list[str]:
        """The insert (see ``DurableStorageTx``): every outcome is decided before anything is
        written, so a refused insert writes nothing."""
        self._check_open()
        stored, held = self._table.rows.keys(), self._table.by_key
        taken: dict[tuple[str, str], str] = {}  # the keys this call takes
        inserting: dict[str, TaskExecutionRecord] = {}
        resolved: list[str] = []
        duplicates: list[str] = []
        for record in executions:
            execution_id = record.execution_id
            key = record.idempotency_key
            if key is not None:
                holder = taken.get((record.task_id, key)) or held.get((record.task_id, key))
                if holder is not None:
                    resolved.append(holder)
                    continue
                taken[(record.task_id, key)] = execution_id
            if execution_id in inserting or execution_id in stored:
                duplicates.append(execution_id)
            inserting[execution_id] = record
            resolved.append(execution_id)
        if duplicates:
            self._refused_ids = list(dict.fromkeys(duplicates))
            raise DuplicateExecutionIdError(self._refused_ids)
        for record in inserting.values():
            self._write(record)
        return resolved

    async def get_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        self._check_open()
        return self._by_ids(execution_ids)

    async def get_finished_task_execution_ids(self, execution_ids: Sequence[str]) -> list[str]:
        self._check_open()
        return [r.execution_id for r in self._by_ids(execution_ids) if r.status in FINISHED]

    async def get_expired_task_executions(
        self, *, now: datetime, limit: int
    ) -> list[TaskExecutionRecord]:
        self._check_open()
        candidates = (
            record
            for record in self._table.with_statuses(["running"], is_closed=False)
            if record.expires_at is not None and record.expires_at < now
        )
        return self._oldest_updated(candidates, limit)

    async def claim_ready_task_executions(
        self,
        *,
        now: datetime,
        limit: int,
        lease_ms: int,
        queues: Sequence[str] | None = None,
    ) -> ClaimedTaskExecutions:
        """The claim, in one step (see ``DurableStorageTx``): transactions are serialised, so
        counting the running executions of a concurrency key here is exact."""
        self._check_open()
        claiming.check_claim_arguments(now, limit, lease_ms, queues)
        table = self._table
        served = None if queues is None else frozenset(queues)
        due = [
            record
            for record in table.with_statuses(["ready"], None)
            if record.start_at <= now and (served is None or record.queue in served)
        ]

        # The SQL claims' order: highest priority first, then FIFO (start_at, insertion).
        def order(record: TaskExecutionRecord) -> tuple[int, datetime, int]:
            return (-record.priority, record.start_at, table.sequence[record.execution_id])

        unlimited = (record for record in due if record.concurrency_limit is None)
        limited = self._claimable_limited(
            sorted((record for record in due if record.concurrency_limit is not None), key=order)
        )
        picked = heapq.nsmallest(limit, itertools.chain(unlimited, limited), key=order)
        claimed = [
            dataclasses.replace(
                record,
                status="running",
                started_at=now,
                updated_at=now,
                expires_at=now + timedelta(milliseconds=lease_ms),
                version=record.version + 1,
            )
            for record in picked
        ]
        for record in claimed:
            self._write(record)
        return ClaimedTaskExecutions(records=claimed, malformed=[])

    def _claimable_limited(self, waiting: list[TaskExecutionRecord]) -> list[TaskExecutionRecord]:
        """Of the due waiting executions under a limit (in claim order), those that fit their
        key's free slots: its limit (the smallest its waiting rows carry) minus its running."""
        slots: dict[tuple[str, str | None], int] = {}
        for record in waiting:
            key = (record.task_id, record.concurrency_key)
            assert record.concurrency_limit is not None  # only limited rows are passed
            slots[key] = min(slots.get(key, record.concurrency_limit), record.concurrency_limit)
        for record in self._table.with_statuses(["running"], None):
            key = (record.task_id, record.concurrency_key)
            if record.concurrency_limit is not None and key in slots:
                slots[key] -= 1
        fitting: list[TaskExecutionRecord] = []
        for record in waiting:
            key = (record.task_id, record.concurrency_key)
            if slots[key] > 0:
                slots[key] -= 1
                fitting.append(record)
        return fitting

    async def update_task_executions_each(
        self, updates: Sequence[tuple[WhereByExecutionIds, TaskExecutionUpdate]]
    ) -> list[int]:
        """The batch of guarded updates: here simply the loop it stands for."""
        self._check_open()
        counts: list[int] = []
        for where, update in updates:
            matched = [r for r in self._by_ids(where.execution_ids) if _matches_guards(r, where)]
            for record in matched:
                self._write(apply_update(record, update))
            counts.append(len(matched))
        return counts

    async def try_lock_pruning(self) -> bool:
        """Automatic retention's lock (see ``DurableStorageTx``): every transaction here holds
        the storage's one lock already."""
        self._check_open()
        return True

    async def prune_batch(
        self,
        *,
        finished_before: datetime,
        statuses: Sequence[TaskExecutionStatus],
        after: PruneCursor | None,
        limit: int,
        dry_run: bool,
    ) -> PrunedBatch:
        """Retention's batch step (see ``DurableStorageTx``), by scanning: fine in memory."""
        self._check_open()
        table = self._table
        descendants: dict[str, list[TaskExecutionRecord]] = {}
        for record in table.rows.values():
            if record.root_task is not None:
                descendants.setdefault(record.root_task.execution_id, []).append(record)

        def walk_key(record: TaskExecutionRecord) -> tuple[datetime, int]:
            assert record.finished_at is not None  # only roots with one are walked
            return record.finished_at, table.sequence[record.execution_id]

        def prunable(record: TaskExecutionRecord) -> bool:
            if record.parent_task is not None or record.finished_at is None:
                return False
            if not (record.finished_at < finished_before and record.is_closed):
                return False
            if record.status not in statuses:
                return False
            if after is not None and walk_key(record) <= (after.finished_at, after.row_id):
                return False
            return all(
                d.is_closed and d.status in FINISHED_STATUSES
                for d in descendants.get(record.execution_id, ())
            )

        roots = sorted(filter(prunable, table.rows.values()), key=walk_key)[:limit]
        if not roots:
            return PrunedBatch(trees=0, executions_by_status={}, cursor=None)
        finished_at, row_id = walk_key(roots[-1])
        counts: Counter[TaskExecutionStatus] = Counter()
        for root in roots:
            for record in [root, *descendants.get(root.execution_id, ())]:
                counts[record.status] += 1
                if not dry_run:
                    self._delete(record)
        return PrunedBatch(
            trees=len(roots),
            executions_by_status=dict(counts),
            cursor=PruneCursor(finished_at=finished_at, row_id=row_id),
        )

    async def renew_task_execution_leases(
        self, leases: Sequence[HeldLease], *, expires_at: datetime
    ) -> list[str]:
        """The batched lease renewal (see ``DurableStorageTx``)."""
        self._check_open()
        expires_at = conversion.renewal_expires_at(leases, expires_at)
        renewed: list[str] = []
        for lease in leases:
            record = self._table.rows.get(lease.execution_id)
            if record is None or record.status != "running" or record.version != lease.version:
                continue
            self._write(dataclasses.replace(record, expires_at=expires_at))
            renewed.append(lease.execution_id)
        return renewed

    def _write_schedule(self, schedule: ScheduleRecord) -> None:
        schedules = self._table.schedules
        self._schedule_undo.setdefault(schedule.schedule_id, schedules.get(schedule.schedule_id))
        schedules[schedule.schedule_id] = schedule

    async def register_task_schedules(self, schedules: Sequence[ScheduleRecord]) -> None:
        """Store schedules by id (see ``DurableStorageTx``)."""
        self._check_open()
        for given in schedules:
            schedule = _schedule_rows.normalised(given)
            stored = self._table.schedules.get(schedule.schedule_id)
            if stored is None:
                self._write_schedule(schedule)
                continue
            same_timing = (stored.cron, stored.every_ms, stored.timezone) == (
                schedule.cron,
                schedule.every_ms,
                schedule.timezone,
            )
            self._write_schedule(
                dataclasses.replace(
                    schedule,
                    next_tick_at=stored.next_tick_at if same_timing else schedule.next_tick_at,
                    created_at=stored.created_at,
                    last_tick_at=stored.last_tick_at,
                    last_execution_id=stored.last_execution_id,
                )
            )

    async def get_task_schedules(self, schedule_ids: Sequence[str]) -> list[ScheduleRecord]:
        self._check_open()
        schedules = self._table.schedules
        return [schedules[i] for i in sorted(set(schedule_ids)) if i in schedules]

    async def advance_task_schedule(self, advance: ScheduleTickAdvance) -> bool:
        """Fire a tick, compare-and-set (see ``DurableStorageTx``)."""
        self._check_open()
        advance = _schedule_rows.normalised_advance(advance)
        stored = self._table.schedules.get(advance.schedule_id)
        if stored is None or stored.next_tick_at != advance.expected_next_tick_at:
            return False
        self._write_schedule(
            dataclasses.replace(
                stored,
                next_tick_at=advance.next_tick_at,
                last_tick_at=advance.tick_at,
                last_execution_id=advance.execution_id,
                updated_at=advance.updated_at,
            )
        )
        return True


class InMemoryStorage:
    """Executions in a dict, transactions serialised by an ``asyncio.Lock``.

    Usable from one event loop at a time. Nothing survives the process.
    """

    def __init__(self) -> None:
        self._table = _Table()
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DurableStorageTx]:
        async with self._lock:
            tx = InMemoryStorageTx(self._table)
            try:
                yield tx
                tx.raise_if_refused()
            except BaseException:
                # Cancellation included: an interrupted transaction must not half-commit.
                tx._finish(commit=False)
                raise
            tx._finish(commit=True)

    def snapshot(self) -> list[TaskExecutionRecord]:
        """Every committed record in insertion order (for tests and debugging)."""
        return sorted(self._table.rows.values(), key=lambda r: self._table.sequence[r.execution_id])

    # Inspection (the optional InspectableStorage queries): scans, fine for in-memory sizes.

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
    ) -> list[TaskExecutionRecord]:
        async with self._lock:
            return inspection.list_records(
                self.snapshot(),
                statuses=statuses,
                task_id=task_id,
                top_level_only=top_level_only,
                limit=limit,
                offset=offset,
                before_execution_id=before_execution_id,
                created_from=created_from,
                created_before=created_before,
            )

    async def count_task_executions_by_status(
        self, *, task_id: str | None = None, top_level_only: bool = False
    ) -> dict[TaskExecutionStatus, int]:
        async with self._lock:
            return inspection.count_by_status(
                self._table.rows.values(), task_id=task_id, top_level_only=top_level_only
            )

    async def get_oldest_ready_task_execution(
        self, *, task_id: str | None = None
    ) -> TaskExecutionRecord | None:
        async with self._lock:
            return inspection.oldest_ready(self.snapshot(), task_id=task_id)

    async def list_task_schedules(self) -> list[ScheduleListing]:
        async with self._lock:
            table = self._table
            listings = []
            for schedule_id in sorted(table.schedules):
                schedule = table.schedules[schedule_id]
                last = table.rows.get(schedule.last_execution_id or "")
                listings.append(ScheduleListing(schedule, None if last is None else last.status))
            return listings
