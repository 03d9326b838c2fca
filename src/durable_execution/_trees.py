"""Reading an execution and everything below it: children, finalize tasks, their children…

Only the storage contract's reads by id are needed: every record names its
children (``children_tasks``) and its finalize execution (``finalize_task``), so the tree is read
level by level, all in one transaction so that it is one consistent picture.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from durable_execution.model import TaskRef
from durable_execution.storage.errors import MalformedRowError
from durable_execution.storage.types import DurableStorage, DurableStorageTx, TaskExecutionRecord

# Ids per read: keeps each statement's parameter list well inside every backend's limits.
_CHUNK: Final = 500


@dataclass(frozen=True, slots=True)
class ExecutionNode:
    record: TaskExecutionRecord
    children: tuple[ExecutionNode, ...] = ()
    finalize: ExecutionNode | None = None
    # Executions the record points at that the storage does not hold (damaged data).
    missing: tuple[TaskRef, ...] = ()
    # Executions the record points at whose rows cannot be decoded, and why.
    unreadable: tuple[MalformedRowError, ...] = ()

    def walk(self) -> Iterator[ExecutionNode]:
        """This node and every node below it, depth first, children before the finalize task."""
        yield self
        for child in self.children:
            yield from child.walk()
        if self.finalize is not None:
            yield from self.finalize.walk()


async def _read(
    tx: DurableStorageTx, ids: Sequence[str], unreadable: dict[str, MalformedRowError]
) -> dict[str, TaskExecutionRecord]:
    found: dict[str, TaskExecutionRecord] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        try:
            rows = await tx.get_task_executions(chunk)
        except MalformedRowError:
            # One damaged row fails the whole read: read them one by one to show the others.
            rows = []
            for execution_id in chunk:
                try:
                    rows += await tx.get_task_executions([execution_id])
                except MalformedRowError as error:
                    unreadable[execution_id] = error
        found.update((row.execution_id, row) for row in rows)
    return found


def _refs(record: TaskExecutionRecord) -> list[TaskRef]:
    refs = list(record.children_tasks or ())
    if record.finalize_task is not None:
        refs.append(record.finalize_task)
    return refs


async def load_records(
    storage: DurableStorage,
    execution_ids: Sequence[str],
    unreadable: dict[str, MalformedRowError] | None = None,
) -> list[TaskExecutionRecord]:
    """The executions and every execution below them (unordered); unknown ids are left out, and
    so are rows that cannot be decoded (added to ``unreadable`` with the reason)."""
    records: dict[str, TaskExecutionRecord] = {}
    unreadable = {} if unreadable is None else unreadable
    async with storage.transaction() as tx:
        level = list(dict.fromkeys(execution_ids))
        while level:
            found = await _read(tx, level, unreadable)
            records.update(found)
            level = list(
                dict.fromkeys(
                    ref.execution_id
                    for record in found.values()
                    for ref in _refs(record)
                    if ref.execution_id not in records
                )
            )
    return list(records.values())


def build_tree(
    records: Sequence[TaskExecutionRecord],
    execution_id: str,
    unreadable: Mapping[str, MalformedRowError] | None = None,
) -> ExecutionNode | None:
    """The tree rooted at ``execution_id`` from ``records`` (as :func:`load_records` returns)."""
    by_id = {record.execution_id: record for record in records}
    damaged = unreadable or {}

    def node(record: TaskExecutionRecord, seen: frozenset[str]) -> ExecutionNode:
        seen = seen | {record.execution_id}
        children: list[ExecutionNode] = []
        missing: list[TaskRef] = []
        bad = [damaged[ref.execution_id] for ref in _refs(record) if ref.execution_id in damaged]
        for ref in record.children_tasks or ():
            child = by_id.get(ref.execution_id)
            if ref.execution_id in damaged:
                continue
            if child is None or ref.execution_id in seen:  # a cycle is damaged data too
                missing.append(ref)
            else:
                children.append(node(child, seen))
        finalize = None
        if record.finalize_task is not None:
            found = by_id.get(record.finalize_task.execution_id)
            if record.finalize_task.execution_id in damaged:
                pass
            elif found is None or found.execution_id in seen:
                missing.append(record.finalize_task)
            else:
                finalize = node(found, seen)
        return ExecutionNode(record, tuple(children), finalize, tuple(missing), tuple(bad))

    root = by_id.get(execution_id)
    return None if root is None else node(root, frozenset())


async def load_tree(storage: DurableStorage, execution_id: str) -> ExecutionNode | None:
    """The execution ``execution_id`` with its whole subtree, or ``None`` if it does not exist.

    Raises :class:`MalformedRowError` if its own row cannot be decoded; damaged rows below it
    are shown as unreadable (``ExecutionNode.unreadable``)."""
    unreadable: dict[str, MalformedRowError] = {}
    records = await load_records(storage, [execution_id], unreadable)
    if execution_id in unreadable:
        raise unreadable[execution_id]
    return build_tree(records, execution_id, unreadable)
