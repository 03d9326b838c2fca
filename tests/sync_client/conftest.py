"""Fixtures of the SyncClient tests: a database URL of each SQL backend, and a worker.

``worker`` runs an async executor (with this module's tasks registered) on its own thread and
event loop against the same database, as a worker process would: what a SyncClient enqueues
there must be run by it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from durable_execution import DurableExecutor, InMemoryStorage, Task, TaskContext, open_storage


@dataclass(frozen=True)
class Tasks:
    add_one: Task[int, int]
    slow: Task[float, str]
    nothing: Task[None, str]
    checked: Task[int, int]


def register(executor: DurableExecutor) -> Tasks:
    """The tests' tasks; the client's executor (never started) and the worker's both call it."""

    @executor.task(id="add_one", timeout_ms=10_000)
    def add_one(ctx: TaskContext, value: int) -> int:
        return value + 1

    @executor.task(id="slow", timeout_ms=60_000)
    async def slow(ctx: TaskContext, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    @executor.task(id="nothing", timeout_ms=10_000)
    def nothing(ctx: TaskContext, value: None) -> str:
        return "nothing"

    def positive(value: int) -> int:
        if value <= 0:
            raise ValueError(f"{value} is not positive")
        return value * 10

    checked = executor.validate_input(positive).task(
        id="checked", timeout_ms=10_000, run=lambda ctx, value: value + 1
    )
    return Tasks(add_one=add_one, slow=slow, nothing=nothing, checked=checked)


@pytest.fixture
def tasks() -> Tasks:
    """The tasks, registered on an executor that is never started (only their ids, defaults
    and validators matter to a SyncClient)."""
    return register(DurableExecutor(InMemoryStorage()))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sync-client.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


Worker = Callable[..., AbstractContextManager[None]]


@pytest.fixture
def worker() -> Worker:
    """``with worker(url, poll_ms=…):`` runs an executor on ``url`` for the block's duration."""

    @contextmanager
    def run(url: str, *, poll_ms: int = 50) -> Iterator[None]:
        started = threading.Event()
        stop: list[asyncio.Event] = []
        failures: list[BaseException] = []
        loop_box: list[asyncio.AbstractEventLoop] = []

        async def main() -> None:
            async with open_storage(url) as storage:
                executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=poll_ms)
                register(executor)
                stop.append(asyncio.Event())
                loop_box.append(asyncio.get_running_loop())
                async with executor:
                    started.set()
                    await stop[0].wait()

        def thread_main() -> None:
            try:
                asyncio.run(main())
            except BaseException as error:
                failures.append(error)
                started.set()

        thread = threading.Thread(target=thread_main, name="test-worker")
        thread.start()
        assert started.wait(30), "the worker did not start"
        try:
            assert not failures, failures
            yield
        finally:
            if loop_box:
                loop_box[0].call_soon_threadsafe(stop[0].set)
            thread.join(30)
            assert not thread.is_alive(), "the worker did not stop"
            assert not failures, failures

    return run
