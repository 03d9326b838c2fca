"""Idempotency keys and priorities through the SyncClient, on SQLite and PostgreSQL: the same
insert and the same rules as the async executor (a key is shared by both)."""

from __future__ import annotations

import asyncio

import pytest

from durable_execution import DurableExecutor, SyncClient, TaskEnqueueOptions, open_storage

from .conftest import Tasks, register


def keyed(key: str) -> TaskEnqueueOptions:
    return TaskEnqueueOptions(idempotency_key=key)


def test_a_held_key_returns_the_holder(db_url: str, tasks: Tasks) -> None:
    with SyncClient(db_url) as client:
        first = client.enqueue_task(tasks.add_one, 1, keyed("order-42"))
        again = client.enqueue_task(tasks.add_one, 2, keyed("order-42"))
        assert again.execution_id == first.execution_id
        assert again.get_execution().run_input == 1  # the first enqueue wins
        handles = client.enqueue_tasks(
            tasks.add_one, [10, 11, 12, 13], [keyed("a"), keyed("order-42"), keyed("a"), None]
        )
        ids = [handle.execution_id for handle in handles]
        assert ids[1] == first.execution_id
        assert ids[2] == ids[0]
        assert len(set(ids)) == 3
        with pytest.raises(ValueError, match="one idempotency_key for 2 inputs"):
            client.enqueue_tasks(tasks.add_one, [1, 2], keyed("b"))


def test_keys_are_shared_with_the_async_executor(db_url: str, tasks: Tasks) -> None:
    with SyncClient(db_url) as client:
        sync_id = client.enqueue_task(tasks.add_one, 1, keyed("shared")).execution_id

    async def enqueue_async() -> str:
        async with open_storage(db_url) as storage:
            executor = DurableExecutor(storage)
            async_tasks = register(executor)
            handle = await executor.enqueue_task(async_tasks.add_one, 2, keyed("shared"))
            return handle.execution_id

    assert asyncio.run(enqueue_async()) == sync_id


def test_priority_and_key_are_stored(db_url: str, tasks: Tasks) -> None:
    with SyncClient(db_url) as client:
        options = TaskEnqueueOptions(priority=9, idempotency_key="k")
        execution_id = client.enqueue_task(tasks.add_one, 1, options).execution_id

    async def read() -> tuple[int, str | None]:
        async with open_storage(db_url) as storage, storage.transaction() as tx:
            [row] = await tx.get_task_executions([execution_id])
        return row.priority, row.idempotency_key

    assert asyncio.run(read()) == (9, "k")
