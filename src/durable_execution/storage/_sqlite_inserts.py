"""What a SQLite insert will do with each record, decided before it writes anything.

The storage contract's ``insert_task_executions`` takes the records in order: one whose
``(task_id, idempotency_key)`` is held (by a stored row or an earlier record of the call) is
skipped and stands for the holder; any other is inserted, and one whose execution id is stored
or repeats an earlier inserted record's refuses the whole call. SQLite runs one writer at a
time (the transaction holds the write lock from its first statement), so reading the holders
and the stored ids first and then inserting cannot race another process: the plan is what the
inserts will find.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from durable_execution.generated import sqlite as lite
from durable_execution.storage.conversion import Columns


@dataclass(frozen=True, slots=True)
class InsertPlan:
    """``inserts``: the rows to insert, in order; ``resolved``: the execution id standing for
    each record given; ``duplicates``: the ids that refuse the call (empty: none)."""

    inserts: list[Columns]
    resolved: list[str]
    duplicates: list[str]


def plan(queries: lite.Queries, conn: sqlite3.Connection, rows: Sequence[Columns]) -> InsertPlan:
    stored = set(
        queries.get_existing_execution_ids(conn, execution_ids=[row.execution_id for row in rows])
    )
    holders: dict[tuple[str, str], str] = {}  # keys looked up or taken by this call
    inserts: list[Columns] = []
    resolved: list[str] = []
    duplicates: list[str] = []
    for row in rows:
        key = row.idempotency_key
        if key is not None:
            holder = holders.get((row.task_id, key))
            if holder is None:
                holder = queries.get_task_execution_id_by_idempotency_key(
                    conn, task_id=row.task_id, idempotency_key=key
                )
            if holder is not None:
                holders[(row.task_id, key)] = holder
                resolved.append(holder)
                continue
            holders[(row.task_id, key)] = row.execution_id
        if row.execution_id in stored:
            duplicates.append(row.execution_id)
        stored.add(row.execution_id)
        inserts.append(row)
        resolved.append(row.execution_id)
    return InsertPlan(
        inserts=inserts, resolved=resolved, duplicates=list(dict.fromkeys(duplicates))
    )
