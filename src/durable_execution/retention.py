"""Retention: delete whole trees of finished executions older than a bound, batch by batch.

A database that lives for years must not keep every execution it ever ran: the queue's indexes
and every inspection query grow with it. :func:`prune_executions` deletes the *trees* (a
top-level execution with its children, finalize executions and chain steps) whose top-level
execution finished before the bound and whose every execution is finished and closed — never
part of a tree, never an active execution. Each batch is its own short transaction (a retried
batch finds only what is still there), so pruning never holds locks for long and never binds
more than one batch of ids in a statement.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from durable_execution._transactions import TransactionRunner
from durable_execution.model import FINISHED_STATUSES, TaskExecutionStatus
from durable_execution.storage.types import (
    DurableStorage,
    DurableStorageTx,
    PruneCursor,
    PrunedBatch,
)

DEFAULT_PRUNE_BATCH_SIZE: Final = 500
# SQLite binds each batch's ids twice; 5,000 stays far below its 32,766 bound variables.
MAX_PRUNE_BATCH_SIZE: Final = 5_000


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What :func:`prune_executions` deleted (or, with ``dry_run``, would delete)."""

    trees: int
    executions_by_status: Mapping[TaskExecutionStatus, int] = field(default_factory=dict)
    dry_run: bool = False
    # With ``exclusive``: another pruner held the pruning lock, so this walk stopped there.
    locked_out: bool = False

    @property
    def executions(self) -> int:
        return sum(self.executions_by_status.values())


def _finished_statuses(
    statuses: Sequence[TaskExecutionStatus] | None,
) -> tuple[TaskExecutionStatus, ...]:
    if statuses is None:
        return FINISHED_STATUSES
    if isinstance(statuses, str):
        raise ValueError("statuses must be a sequence of statuses, not one string")
    chosen = tuple(dict.fromkeys(statuses))
    if not chosen:
        raise ValueError("statuses must name at least one finished status (or be None for all)")
    wrong = [status for status in chosen if status not in FINISHED_STATUSES]
    if wrong:
        raise ValueError(
            f"only finished executions can be pruned; not finished: {', '.join(map(str, wrong))}"
            f" (finished statuses: {', '.join(FINISHED_STATUSES)})"
        )
    return chosen


async def prune_executions(
    storage: DurableStorage,
    *,
    older_than: timedelta,
    statuses: Sequence[TaskExecutionStatus] | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_PRUNE_BATCH_SIZE,
    now: datetime | None = None,
    logger: logging.Logger | None = None,
    exclusive: bool = False,
) -> PruneResult:
    """Delete every tree of executions whose top-level execution finished more than
    ``older_than`` ago (before ``now``, default the current time) with one of ``statuses``
    (default: every finished status), and whose executions are all finished and closed.

    ``dry_run`` counts what would be deleted and deletes nothing. Safe to run from several
    processes at once and beside running executors: a tree that another pruner holds is
    skipped, and a tree with an active execution is never touched.

    ``exclusive`` (what automatic retention uses) takes the storage's pruning lock first in
    each batch's transaction and stops, with ``locked_out`` set, when another pruner holds it:
    executors sharing a database then prune one at a time instead of racing through the same
    candidates.
    """
    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise ValueError(f"older_than must be a timedelta >= 0, got {older_than!r}")
    chosen = _finished_statuses(statuses)
    if isinstance(batch_size, bool) or not 1 <= batch_size <= MAX_PRUNE_BATCH_SIZE:
        raise ValueError(f"batch_size must be in 1..{MAX_PRUNE_BATCH_SIZE}, got {batch_size!r}")
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    try:
        finished_before = (now or datetime.now(UTC)) - older_than
    except OverflowError:
        raise ValueError(f"older_than is too large: {older_than!r}") from None
    # Whole milliseconds, as every backend stores them.
    finished_before = finished_before.replace(
        microsecond=finished_before.microsecond // 1000 * 1000
    )
    transactions = TransactionRunner(storage, logger or logging.getLogger("durable_execution"))
    trees = 0
    by_status: Counter[TaskExecutionStatus] = Counter()
    after: PruneCursor | None = None
    locked_out = False
    while True:

        async def one_batch(
            tx: DurableStorageTx, after: PruneCursor | None = after
        ) -> PrunedBatch | None:
            if exclusive and not await tx.try_lock_pruning():
                return None
            return await tx.prune_batch(
                finished_before=finished_before,
                statuses=chosen,
                after=after,
                limit=batch_size,
                dry_run=dry_run,
            )

        batch = await transactions.run(one_batch)
        if batch is None:
            locked_out = True
            break
        trees += batch.trees
        by_status.update(batch.executions_by_status)
        if batch.cursor is None or batch.trees < batch_size:
            break
        after = batch.cursor
    return PruneResult(
        trees=trees,
        executions_by_status=dict(by_status),
        dry_run=dry_run,
        locked_out=locked_out,
    )
