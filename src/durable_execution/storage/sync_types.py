"""The synchronous storage a ``SyncClient`` writes through: the few operations it needs.

A subset of the async contract (:class:`~durable_execution.storage.types.DurableStorageTx`),
with the same meaning: inserts refuse duplicate ids with ``DuplicateExecutionIdError`` and store
nothing, skip a record whose idempotency key is held and return, per record, the execution id
standing for it; reads by id return rows in insertion order; a cancel is guarded by the status
and version its caller read. Implemented by :mod:`.sync_sqlite` and
:mod:`.sync_postgres`; every method is safe to call from several threads at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from durable_execution.storage.types import TaskExecutionCancel, TaskExecutionRecord


class SyncStorageTx(Protocol):
    """One open transaction, used by one thread."""

    def insert_task_executions(self, executions: Sequence[TaskExecutionRecord]) -> list[str]: ...

    def get_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]: ...

    def cancel_task_execution(self, cancel: TaskExecutionCancel) -> bool: ...


class SyncStorage(Protocol):
    """``transaction()`` commits on normal exit and rolls back on error; ``read_task_executions``
    reads outside any transaction (no write lock taken); ``close`` releases the connections."""

    def transaction(self) -> AbstractContextManager[SyncStorageTx]: ...

    def insert_at_once(self, executions: Sequence[TaskExecutionRecord]) -> list[str]:
        """Insert up to ``_inserts.CHUNK`` executions as one atomic write, committed: what a
        transaction doing only ``insert_task_executions`` does, in as few round trips as the
        backend allows (PostgreSQL: one statement in autocommit, instead of BEGIN, INSERT,
        COMMIT)."""
        ...

    def read_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]: ...

    def close(self) -> None: ...
