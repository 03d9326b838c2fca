"""Enqueuing: building the records of new top-level executions and storing them.

``enqueue_task`` calls share transactions (see ``_coalescing``); ``enqueue_tasks`` stores its
batch in one. A retry after an unknown commit outcome finds its own rows (see ``_inserts``).

Idempotency keys: the storage skips a record whose key an execution of its task already holds
(in any status, committed by any process, or earlier in the same batch) and returns the holder's
id instead, so the handle returned is a handle on the holder. The holder is not compared with
the new request: the first enqueue of a key wins, whatever input or options later ones carry
(as DBOS, Absurd and River do). A key is freed when retention deletes its execution.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from durable_execution._coalescing import Coalescer
from durable_execution._inserts import insert_new, insert_unless_stored
from durable_execution._notifier import Subscribed, subscribe
from durable_execution._options import options_per_input, resolve_enqueue_options
from durable_execution._records import enqueued_record
from durable_execution._registry import validated_input
from durable_execution._runtime import Runtime
from durable_execution._telemetry import enqueue_span, enqueued
from durable_execution.storage.types import TaskExecutionRecord
from durable_execution.tasks import TaskDefinition, TaskEnqueueOptions

# Most executions one insert statement carries (SQLite binds each id of its duplicate check).
_ENQUEUE_CHUNK: Final = 500


class Enqueuer:
    """Stores new top-level executions for one executor; returns the execution ids that stand
    for them (their own, or the holders of their idempotency keys)."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._coalesced: Coalescer[TaskExecutionRecord, str] = Coalescer(
            runtime.transactions,
            insert_new,
            max_batch=_ENQUEUE_CHUNK,
            again=insert_unless_stored,
            # One insert statement, unless a key's holders must be read too.
            single_statement=lambda records: all(r.idempotency_key is None for r in records),
        )

    async def wait_idle(self) -> None:
        """Until every ``one`` call so far has been committed or has failed."""
        await self._coalesced.wait_idle()

    async def one(
        self, definition: TaskDefinition, input: object, options: TaskEnqueueOptions | None
    ) -> tuple[str, Subscribed | None]:
        """The execution id standing for the new execution, and its subscription if that is
        the new one (taken before the insert: see TaskHandle)."""
        with enqueue_span(definition.id):  # current while the record is built: it stores it
            record = await self._record(definition, input, options)
            enqueued(execution_id=record.execution_id)
            subscribed = subscribe(self._rt.notifier, record.execution_id)
            execution_id = await self._coalesced.submit(record)
        self._rt.wake_ready_at([record.start_at])
        self._log(definition, [record], [execution_id])
        return execution_id, subscribed if execution_id == record.execution_id else None

    async def many(
        self,
        definition: TaskDefinition,
        inputs: Iterable[object],
        options: TaskEnqueueOptions | Sequence[TaskEnqueueOptions | None] | None,
    ) -> list[tuple[str, Subscribed | None]]:
        """:meth:`one` for a batch, in one transaction."""
        values = list(inputs)
        per_input = options_per_input(definition.id, len(values), options)
        with enqueue_span(definition.id):  # one span for the batch, however many
            records = [
                await self._record(definition, value, value_options)
                for value, value_options in zip(values, per_input, strict=True)
            ]
            enqueued(count=len(records))
            if not records:
                return []
            subscribed = [subscribe(self._rt.notifier, r.execution_id) for r in records]
            execution_ids = await self._rt.transactions.run(
                lambda tx: insert_new(tx, records),
                again=lambda tx: insert_unless_stored(tx, records),
            )
        self._rt.wake_ready_at([records[0].start_at])
        self._log(definition, records, execution_ids)
        return [
            (execution_id, mine if execution_id == record.execution_id else None)
            for execution_id, record, mine in zip(execution_ids, records, subscribed, strict=True)
        ]

    async def _record(
        self, definition: TaskDefinition, input: object, options: TaskEnqueueOptions | None
    ) -> TaskExecutionRecord:
        resolved = resolve_enqueue_options(definition, options)
        validated = await validated_input(definition, input)
        return enqueued_record(definition, resolved, validated, self._rt.serializer)

    def _log(
        self,
        definition: TaskDefinition,
        records: Sequence[TaskExecutionRecord],
        execution_ids: Sequence[str],
    ) -> None:
        logger = self._rt.logger
        stored = 0
        for record, execution_id in zip(records, execution_ids, strict=True):
            if execution_id == record.execution_id:
                stored += 1
            else:
                logger.debug(
                    "Enqueue of %s with idempotency key %r returned existing execution %s",
                    definition.id,
                    record.idempotency_key,
                    execution_id,
                )
        if len(records) == 1 and stored:
            logger.debug("Enqueued %s as %s", definition.id, records[0].execution_id)
        elif len(records) > 1:
            logger.debug("Enqueued %d executions of %s", stored, definition.id)
