"""The enqueuer's trace context (migration 0006) is stored and read back by every backend.

It is written once, at insert, and must survive every path that reads whole rows: the plain
select, the set-based claim (RETURNING *), an update of other fields, and the operator listing.
"""

from __future__ import annotations

import json

from durable_execution.storage import (
    DurableStorage,
    InspectableStorage,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

from ._records import at, insert, read, record, update_one

CONTEXT = json.dumps(
    {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=value,é=ü",
    }
)


async def test_a_trace_context_round_trips(storage: DurableStorage) -> None:
    await insert(storage, record("te_traced", trace_context=CONTEXT), record("te_plain"))
    traced = await read(storage, "te_traced")
    plain = await read(storage, "te_plain")
    assert traced is not None
    assert traced.trace_context == CONTEXT
    assert plain is not None
    assert plain.trace_context is None


async def test_an_update_of_other_fields_keeps_the_trace_context(storage: DurableStorage) -> None:
    await insert(storage, record("te_traced", trace_context=CONTEXT))
    async with storage.transaction() as tx:
        updated = await update_one(
            tx,
            WhereByExecutionIds(["te_traced"]),
            TaskExecutionUpdate(updated_at=at(5), status="running", version=1),
        )
    assert updated == 1
    back = await read(storage, "te_traced")
    assert back is not None
    assert back.status == "running"
    assert back.trace_context == CONTEXT


async def test_a_claim_returns_the_trace_context(storage: DurableStorage) -> None:
    await insert(storage, record("te_traced", trace_context=CONTEXT))
    async with storage.transaction() as tx:  # the claim is part of every storage's contract
        claimed = await tx.claim_ready_task_executions(now=at(10), limit=5, lease_ms=1000)
    assert [r.trace_context for r in claimed.records] == [CONTEXT]


async def test_the_operator_listing_returns_the_trace_context(storage: DurableStorage) -> None:
    await insert(storage, record("te_traced", trace_context=CONTEXT))
    assert isinstance(storage, InspectableStorage)
    listed = await storage.list_task_executions(limit=10)
    assert [getattr(r, "trace_context", None) for r in listed] == [CONTEXT]
