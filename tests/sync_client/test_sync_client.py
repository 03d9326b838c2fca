"""SyncClient on SQLite and PostgreSQL: enqueue, read, wait, cancel, and a worker that runs it.

Every test uses a real database (a SQLite file, a PostgreSQL schema) and, where work must run,
a real async executor on the same database (``worker``).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import psycopg
import pydantic
import pytest

from durable_execution import (
    DurableExecutionError,
    DurableExecutionNotFoundError,
    DurableExecutionTimedOutError,
    DurableExecutor,
    InMemoryStorage,
    StorageError,
    SyncClient,
    SyncTaskHandle,
    TaskContext,
    TaskEnqueueOptions,
    open_storage,
)
from durable_execution.storage.types import InspectableStorage

from .conftest import Tasks, Worker


def stored_count(url: str) -> int:
    """How many executions the database holds, counted by the async storage."""

    async def count() -> int:
        async with open_storage(url) as storage:
            assert isinstance(storage, InspectableStorage)
            return sum((await storage.count_task_executions_by_status()).values())

    return asyncio.run(count())


def test_enqueued_execution_is_stored_ready(db_url: str, tasks: Tasks) -> None:
    with SyncClient(db_url) as client:
        handle = client.enqueue_task(tasks.add_one, 41)
        assert handle.task_id == "add_one"
        execution = handle.get_execution()
        assert execution.status == "ready"
        assert execution.run_input == 41
        assert execution.timeout_ms == 10_000
        assert client.get_execution(handle.execution_id).execution_id == handle.execution_id


def test_a_worker_runs_what_the_client_enqueued(db_url: str, tasks: Tasks, worker: Worker) -> None:
    with SyncClient(db_url) as client, worker(db_url):
        handles = [client.enqueue_task(tasks.add_one, value) for value in (1, 2)]
        handles += client.enqueue_tasks(tasks.add_one, [3, 4])
        outputs = []
        for handle in handles:
            execution = handle.wait_and_get_finished_execution(
                polling_interval_ms=50, timeout_ms=30_000
            )
            assert execution.status == "completed", execution
            outputs.append(execution.output)
        assert outputs == [2, 3, 4, 5]


def test_postgres_workers_are_woken_by_the_client_not_by_their_poll(
    postgres_url: str, tasks: Tasks, worker: Worker
) -> None:
    # The worker's idle poll is an hour: only the client's pg_notify can make it claim the work.
    with worker(postgres_url, poll_ms=3_600_000), SyncClient(postgres_url) as client:
        handle = client.enqueue_task(tasks.add_one, 1)
        execution = handle.wait_and_get_finished_execution(
            polling_interval_ms=50, timeout_ms=30_000
        )
        assert execution.status == "completed"


def test_closing_sends_the_notice_still_owed(postgres_url: str, tasks: Tasks) -> None:
    client = SyncClient(postgres_url)
    client.enqueue_task(tasks.add_one, 1)
    client.close()  # at once: the debounced notice may not have gone out yet
    storage = client._storage
    from durable_execution.storage.sync_postgres import SyncPostgresStorage

    assert isinstance(storage, SyncPostgresStorage)
    assert storage.notices.sent == 1


def test_enqueue_tasks_keeps_the_order_and_stores_all_or_nothing(db_url: str, tasks: Tasks) -> None:
    with SyncClient(db_url) as client:
        handles = client.enqueue_tasks(tasks.add_one, [5, 6, 7])
        assert [h.get_execution().run_input for h in handles] == [5, 6, 7]
        assert client.enqueue_tasks(tasks.add_one, []) == []
        unstorable: list[int] = [8, object(), 9]  # type: ignore[list-item]
        with pytest.raises(DurableExecutionError, match="serializ"):
            client.enqueue_tasks(tasks.add_one, unstorable)
    assert stored_count(db_url) == 3


def test_bad_options_and_inputs_store_nothing(db_url: str, tasks: Tasks) -> None:
    with SyncClient(db_url) as client:
        with pytest.raises(DurableExecutionError, match="Invalid enqueue options for task add_one"):
            client.enqueue_task(tasks.add_one, 1, TaskEnqueueOptions(timeout_ms=-5))
        with pytest.raises(DurableExecutionError, match="Invalid input to task checked: -1 is"):
            client.enqueue_task(tasks.checked, -1)
        handle = client.enqueue_task(tasks.checked, 2, TaskEnqueueOptions(timeout_ms=5_000))
        execution = handle.get_execution()
        assert (execution.run_input, execution.timeout_ms) == (20, 5_000)
    assert stored_count(db_url) == 1


def test_async_validators_are_refused_clearly(tmp_path: Path) -> None:
    executor = DurableExecutor(InMemoryStorage())

    async def check(value: int) -> int:
        return value

    task = executor.validate_input(check).task(
        id="async_checked", timeout_ms=1000, run=lambda ctx, value: value
    )
    with (
        SyncClient(f"sqlite:///{tmp_path / 'db.sqlite'}") as client,
        pytest.raises(DurableExecutionError, match="async function, which a SyncClient"),
    ):
        client.enqueue_task(task, 1)


def test_a_task_with_no_input(db_url: str, tasks: Tasks, worker: Worker) -> None:
    with SyncClient(db_url) as client, worker(db_url):
        execution = client.enqueue_task(tasks.nothing).wait_and_get_finished_execution(
            polling_interval_ms=50, timeout_ms=30_000
        )
        assert execution.status == "completed"
        assert execution.output == "nothing"


def test_cancel(db_url: str, tasks: Tasks) -> None:
    with SyncClient(db_url) as client:
        handle = client.enqueue_task(tasks.add_one, 1)
        assert client.cancel(handle.execution_id) is True
        assert client.cancel(handle.execution_id) is False  # already finished
        handle.cancel()  # harmless
        execution = handle.wait_and_get_finished_execution(timeout_ms=0)
        assert execution.status == "cancelled"
        with pytest.raises(DurableExecutionNotFoundError):
            client.cancel("te_unknown")
        SyncTaskHandle(client, "add_one", "te_unknown").cancel()  # silent, as TaskHandle's


def test_cancel_stops_a_running_attempt_in_the_worker(
    db_url: str, tasks: Tasks, worker: Worker
) -> None:
    with SyncClient(db_url) as client, worker(db_url):
        handle = client.enqueue_task(tasks.slow, 60.0)
        for _ in range(600):
            if handle.get_execution().status == "running":
                break
            threading.Event().wait(0.05)
        assert client.cancel(handle.execution_id) is True
        execution = handle.wait_and_get_finished_execution(timeout_ms=30_000)
        assert execution.status == "cancelled"


def test_wait_times_out_without_a_worker(db_url: str, tasks: Tasks) -> None:
    with SyncClient(db_url) as client:
        handle = client.enqueue_task(tasks.add_one, 1)
        with pytest.raises(DurableExecutionTimedOutError, match=handle.execution_id):
            handle.wait_and_get_finished_execution(polling_interval_ms=10, timeout_ms=100)
        with pytest.raises(DurableExecutionTimedOutError):
            client.wait_and_get_finished_execution(handle.execution_id, timeout_ms=0)
        with pytest.raises(ValueError, match="timeout_ms must be None or an integer"):
            handle.wait_and_get_finished_execution(timeout_ms=1.5)  # type: ignore[arg-type]


def test_unknown_and_foreign_executions(db_url: str, tasks: Tasks) -> None:
    with SyncClient(db_url) as client:
        handle = client.enqueue_task(tasks.add_one, 1)
        typed = client.get_task_handle(tasks.add_one, handle.execution_id)
        assert typed.get_execution().run_input == 1
        with pytest.raises(DurableExecutionNotFoundError, match="belongs to task add_one"):
            client.get_task_handle(tasks.slow, handle.execution_id)
        for unknown in ("te_nothere", "not an id\x00"):
            with pytest.raises(DurableExecutionNotFoundError):
                client.get_execution(unknown)
            with pytest.raises(DurableExecutionNotFoundError):
                client.wait_and_get_finished_execution(unknown, timeout_ms=1000)


def test_threads_share_one_client(db_url: str, tasks: Tasks) -> None:
    threads, per_thread = 8, 25
    ids: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    with SyncClient(db_url) as client:

        def enqueue(index: int) -> None:
            try:
                for value in range(per_thread):
                    handle = client.enqueue_task(tasks.add_one, index * 1000 + value)
                    assert handle.get_execution().run_input == index * 1000 + value
                    ids[index].append(handle.execution_id)
            except BaseException as error:
                errors.append(error)

        workers = [threading.Thread(target=enqueue, args=(i,)) for i in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        assert errors == []
        every_id = [execution_id for chunk in ids for execution_id in chunk]
        assert len(set(every_id)) == threads * per_thread
        inputs = {client.get_execution(execution_id).run_input for execution_id in every_id}
        assert inputs == {i * 1000 + v for i in range(threads) for v in range(per_thread)}
    assert stored_count(db_url) == threads * per_thread


def test_memory_storage_is_refused() -> None:
    with pytest.raises(ValueError, match="SyncClient cannot use memory://"):
        SyncClient("memory://")


def test_options_are_checked_like_open_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with pytest.raises(ValueError, match="pool_min_size does not apply to sqlite://"):
        SyncClient(url, pool_min_size=2)
    with pytest.raises(ValueError, match="synchronous is given twice"):
        SyncClient(url + "?synchronous=normal", sqlite_synchronous="full")
    with pytest.raises(ValueError, match="unsupported storage URL scheme"):
        SyncClient("mysql://db")
    with pytest.raises(DurableExecutionError, match="max_serialized_size_bytes"):
        SyncClient(url, max_serialized_size_bytes=0)


def test_without_migrate_an_empty_database_says_what_to_do(db_url: str, tasks: Tasks) -> None:
    with (
        SyncClient(db_url, migrate=False) as client,
        pytest.raises(StorageError, match=r"does not exist.*migrate"),
    ):
        client.enqueue_task(tasks.add_one, 1)
    with SyncClient(db_url) as client:  # migrates
        client.enqueue_task(tasks.add_one, 1)


def test_a_closed_client_refuses_work(db_url: str, tasks: Tasks) -> None:
    client = SyncClient(db_url)
    handle = client.enqueue_task(tasks.add_one, 1)
    client.close()
    client.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        client.enqueue_task(tasks.add_one, 1)
    with pytest.raises(StorageError, match="closed"):
        handle.get_execution()


def test_other_table_names(db_url: str, tasks: Tasks, worker: Worker) -> None:
    with SyncClient(db_url, table_name="other_queue") as client:
        handle = client.enqueue_task(tasks.add_one, 1)
    assert stored_count(db_url) == 0  # the default table is untouched
    with SyncClient(db_url, table_name="other_queue") as client:
        assert client.get_execution(handle.execution_id).status == "ready"


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_a_pydantic_schema_task_is_validated_and_stored_as_its_dump(tmp_path: Path) -> None:
    executor = DurableExecutor(InMemoryStorage())

    def greet(ctx: TaskContext, person: Person) -> str:
        return f"{person.name} is {person.age}"

    task = executor.input_schema(Person).task(id="greet_person", timeout_ms=1000, run=greet)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with SyncClient(url) as client:
        with pytest.raises(DurableExecutionError, match="Invalid input to task greet_person"):
            client.enqueue_task(task, {"name": "Ada"})  # type: ignore[misc]
        raw: Any = {"name": "Ada", "age": "36"}  # what a pydantic schema accepts and converts
        handle = client.enqueue_task(task, raw)
        assert handle.get_execution().run_input == {"name": "Ada", "age": 36}


async def test_it_opens_inside_a_running_event_loop_too(tmp_path: Path, tasks: Tasks) -> None:
    # Its schema pass runs open_storage on a thread of its own, never on the caller's loop.
    with SyncClient(f"sqlite:///{tmp_path / 'db.sqlite'}") as client:
        assert client.enqueue_task(tasks.add_one, 1).get_execution().status == "ready"


def test_postgres_connections_dropped_by_the_server_are_replaced(
    postgres_url: str, tasks: Tasks
) -> None:
    # Four idle connections, all killed: more than the transaction retries (3) could absorb.
    with SyncClient(postgres_url, pool_min_size=4) as client:
        first = client.enqueue_task(tasks.add_one, 1)
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'"
            ).fetchone()
        assert killed is not None
        assert killed[0] >= 4  # the client's pooled connections, now dead
        second = client.enqueue_task(tasks.add_one, 2)
        assert client.get_execution(first.execution_id).status == "ready"
        assert second.get_execution().run_input == 2


def test_more_than_one_statement_of_executions_in_one_transaction(
    db_url: str, tasks: Tasks
) -> None:
    with SyncClient(db_url) as client:
        handles = client.enqueue_tasks(tasks.add_one, range(1203))  # three chunks of at most 500
        assert [h.get_execution().run_input for h in handles[::300]] == [0, 300, 600, 900, 1200]
    assert stored_count(db_url) == 1203


def test_its_repr_never_shows_the_password(postgres_url: str) -> None:
    url = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@")
    with SyncClient(url) as client:  # trust auth: the password is not checked
        assert "s3cret" not in repr(client)
        assert "table='durable_task_executions'" in repr(client)
    assert repr(client).endswith(" closed>")


def test_the_client_stores_the_queue_and_concurrency_key(db_url: str) -> None:
    executor = DurableExecutor(InMemoryStorage())  # never started: it only defines the task
    mail = executor.task(
        id="mail", timeout_ms=1_000, run=_echo, queue="emails", concurrency_limit=2
    )
    with SyncClient(db_url) as client:
        keyed = client.enqueue_task(mail, 1, TaskEnqueueOptions(concurrency_key="customer-7"))
        [pooled] = client.enqueue_tasks(mail, [2])

    async def read() -> list[tuple[str, str | None, int | None]]:
        async with open_storage(db_url, migrate=False) as storage, storage.transaction() as tx:
            rows = await tx.get_task_executions([keyed.execution_id, pooled.execution_id])
        return [(row.queue, row.concurrency_key, row.concurrency_limit) for row in rows]

    assert asyncio.run(read()) == [("emails", "customer-7", 2), ("emails", "", 2)]


def _echo(ctx: TaskContext, value: int) -> int:
    return value
