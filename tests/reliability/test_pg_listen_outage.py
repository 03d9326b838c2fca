"""A PostgreSQL ready watch entered while the server is down: entering does not fail, the watch
keeps trying, and once the server is up it listens, calls on_ready for the notices it may have
missed, and forwards later ones. A private server (never the shared cluster) makes the outage.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from durable_execution.model import RetryOptions
from durable_execution.storage import TaskExecutionRecord, open_storage
from durable_execution.storage.postgres import PostgresDurableStorage

from ._private_pg_server import PrivatePostgres

SECRET = "ListenSecret-93f1"  # trust auth ignores it; it must never show in logs
BOUND_S = 30.0  # liveness bound: the watch retries with a backoff capped at 1 s


@pytest.fixture(scope="module")
def stopped_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.destroy()


def ready_record(execution_id: str) -> TaskExecutionRecord:
    now = datetime.now(UTC)
    return TaskExecutionRecord(
        task_id="task",
        execution_id=execution_id,
        retry_options=RetryOptions(max_attempts=0),
        sleep_ms_before_run=0,
        timeout_ms=1000,
        run_input="null",
        status="ready",
        start_at=now,
        created_at=now,
        updated_at=now,
    )


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        self._changed.set()

    async def reach(self, n: int) -> None:
        async with asyncio.timeout(BOUND_S):
            while self.count < n:
                self._changed.clear()
                await self._changed.wait()


async def test_a_watch_entered_while_the_server_is_down_listens_once_it_is_up(
    stopped_postgres: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="durable_execution")
    url = stopped_postgres.url(password=SECRET)
    table = f"t_{secrets.token_hex(6)}"
    watched = PostgresDurableStorage(url, table_name=table, display_url="the test server")
    calls = Calls()
    async with watched.watch_ready(calls):  # returns although nothing listens
        assert calls.count == 0
        assert "cannot listen" in caplog.text
        stopped_postgres.start()
        try:
            # Listening at last: notices sent meanwhile were lost, so on_ready is called.
            await calls.reach(1)
            async with open_storage(url, table_name=table) as producer:
                async with producer.transaction() as tx:
                    await tx.insert_task_executions([ready_record("te_1")])
                await calls.reach(2)
        finally:
            stopped_postgres.stop()
    assert [
        t for t in asyncio.all_tasks() if t.get_name().startswith("durable-execution:listen")
    ] == []
    assert "the test server" in caplog.text
    assert SECRET not in caplog.text
