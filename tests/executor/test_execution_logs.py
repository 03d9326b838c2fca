"""What an operator sees in the logs: each execution's life, with its ids as structured fields."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from durable_execution import (
    ChildTask,
    ExecutionLogFilter,
    JsonLogFormatter,
    JsonSerializer,
    ParentTaskResult,
    RetryOptions,
    TaskContext,
)
from durable_execution.clock import now
from durable_execution.model import NO_RETRIES
from durable_execution.storage import DurableStorage, TaskExecutionRecord

from ._support import MakeExecutor, eventually, wait_completed, wait_finished

_names = itertools.count()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def about(self, execution_id: str) -> list[logging.LogRecord]:
        return [r for r in self.records if getattr(r, "execution_id", None) == execution_id]


@contextmanager
def _captured(name: str, level: int = logging.DEBUG) -> Iterator[_Records]:
    """Records of logger ``name`` (and its children), through a handler with the library's
    filter, as a worker's logging configuration has it."""
    handler = _Records()
    handler.addFilter(ExecutionLogFilter())
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _fields(record: logging.LogRecord) -> tuple[object, ...]:
    return tuple(getattr(record, name, None) for name in ("task_id", "attempt", "status"))


def _logger_name() -> str:
    return f"test_durable_logs.{next(_names)}"


async def test_an_executions_life_is_logged_with_its_fields(make_executor: MakeExecutor) -> None:
    name = _logger_name()
    with _captured(name) as logs:
        executor = await make_executor(logger=logging.getLogger(name))

        def lookup(ctx: TaskContext, _: None) -> None:
            raise KeyError("sku")

        task = executor.task(
            id="lookup",
            timeout_ms=5_000,
            retry_options=RetryOptions(max_attempts=1, base_delay_ms=20),
            run=lookup,
        )
        handle = await executor.enqueue_task(task)
        await wait_finished(handle)
        ours = logs.about(handle.execution_id)
        eid = handle.execution_id
        assert [(r.levelname, _fields(r)) for r in ours] == [
            ("DEBUG", ("lookup", 0, "running")),  # claimed
            ("INFO", ("lookup", 0, "ready")),  # a retry scheduled
            ("DEBUG", ("lookup", 1, "running")),  # claimed again
            ("WARNING", ("lookup", 1, "failed")),  # failed for good
        ]
        claimed, retry, _, failed = ours
        assert claimed.getMessage() == f"Execution {eid} of task lookup claimed"
        assert retry.getMessage() == (
            f"Execution {eid} of task lookup failed: KeyError: 'sku'; retry 1 of 1 in 20 ms"
        )
        assert getattr(retry, "retry_delay_ms", None) == 20
        assert retry.exc_info is None
        assert failed.getMessage() == f"Execution {eid} of task lookup failed: KeyError: 'sku'"
        # With the traceback of the task's own code (the runner's frames left out).
        assert failed.exc_info is not None
        text = logging.Formatter().formatException(failed.exc_info)
        assert text.splitlines()[1].endswith("in lookup"), text
        assert text.endswith("KeyError: 'sku'")


async def test_a_final_timeout_is_a_warning_without_traceback(make_executor: MakeExecutor) -> None:
    name = _logger_name()
    with _captured(name) as logs:
        executor = await make_executor(logger=logging.getLogger(name))

        async def slow(ctx: TaskContext, _: None) -> None:
            await asyncio.sleep(10)

        task = executor.task(id="slow", timeout_ms=20, run=slow)
        handle = await executor.enqueue_task(task)
        await wait_finished(handle)
        [timed_out] = [r for r in logs.about(handle.execution_id) if r.levelno >= logging.INFO]
        assert timed_out.levelname == "WARNING"
        assert _fields(timed_out) == ("slow", 0, "timed_out")
        assert timed_out.getMessage() == (
            f"Execution {handle.execution_id} of task slow timed out: Task timed out"
        )
        assert timed_out.exc_info is None


async def test_a_parent_finishing_is_logged_at_info(make_executor: MakeExecutor) -> None:
    name = _logger_name()
    with _captured(name, logging.INFO) as logs:
        executor = await make_executor(logger=logging.getLogger(name))

        async def child(ctx: TaskContext, value: int) -> int:
            return value

        child_task = executor.task(id="child", timeout_ms=5_000, run=child)

        async def parent(ctx: TaskContext, _: None) -> ParentTaskResult[None]:
            return ParentTaskResult(output=None, children_tasks=[ChildTask(child_task, 1)])

        parent_task = executor.parent_task(id="parent", timeout_ms=5_000, run_parent=parent)
        handle = await executor.enqueue_task(parent_task)
        await wait_completed(handle)

        def logged() -> bool:
            return bool(logs.about(handle.execution_id))

        await eventually(logged, what="the parent's finish logged")
        [finished] = logs.about(handle.execution_id)
        assert finished.levelname == "INFO"
        assert _fields(finished) == ("parent", 0, "completed")
        assert finished.getMessage() == (
            f"Parent execution {handle.execution_id} of task parent finished: completed"
        )


async def test_a_lease_expiry_is_a_warning(
    make_executor: MakeExecutor, storage: DurableStorage
) -> None:
    claimed_at = now() - timedelta(seconds=10)
    orphan = TaskExecutionRecord(
        task_id="orphan",
        execution_id="te_CrashedWrkr0123456789ABC",
        retry_options=NO_RETRIES,
        sleep_ms_before_run=0,
        timeout_ms=1000,
        run_input=JsonSerializer().serialize(None),
        status="running",
        start_at=claimed_at,
        created_at=claimed_at,
        updated_at=claimed_at,
        started_at=claimed_at,
        expires_at=claimed_at + timedelta(seconds=5),
    )
    async with storage.transaction() as tx:
        await tx.insert_task_executions([orphan])
    name = _logger_name()
    with _captured(name) as logs:
        executor = await make_executor(start=False, logger=logging.getLogger(name))

        async def run(ctx: TaskContext, _: None) -> str:
            return "recovered"

        task = executor.task(id="orphan", timeout_ms=1000, run=run)
        await executor.start()
        await wait_completed(await executor.get_task_handle(task, orphan.execution_id))
        [expired] = [r for r in logs.about(orphan.execution_id) if r.levelno >= logging.INFO]
        assert expired.levelname == "WARNING"
        assert _fields(expired) == ("orphan", 0, "ready")
        assert getattr(expired, "lease_expiries", None) == 1
        assert expired.getMessage().startswith(
            f"Lease of execution {orphan.execution_id} of task orphan expired"
        )


async def test_records_logged_inside_a_task_carry_its_ids(make_executor: MakeExecutor) -> None:
    name = _logger_name()
    with _captured(name) as app_logs:
        executor = await make_executor()
        app = logging.getLogger(f"{name}.myapp")

        def sync_run(ctx: TaskContext, value: str) -> str:
            app.info("sync %s", value)  # in the worker thread
            return value

        async def async_run(ctx: TaskContext, value: str) -> str:
            app.info("async %s", value)

            async def helper() -> None:
                app.info("helper %s", value)  # in a task the run function created

            await asyncio.create_task(helper())
            return value

        sync_task = executor.task(id="sync_logs", timeout_ms=5_000, run=sync_run)
        async_task = executor.task(id="async_logs", timeout_ms=5_000, run=async_run)
        sync_handle = await executor.enqueue_task(sync_task, "a")
        async_handle = await executor.enqueue_task(async_task, "b")
        await wait_completed(sync_handle)
        await wait_completed(async_handle)
        app.info("outside")

    by_message = {r.getMessage(): r for r in app_logs.records}
    sync_record, async_record = by_message["sync a"], by_message["async b"]
    helper_record = by_message["helper b"]
    assert (getattr(sync_record, "execution_id", None), _fields(sync_record)) == (
        sync_handle.execution_id,
        ("sync_logs", 0, None),
    )
    for record in (async_record, helper_record):
        assert (getattr(record, "execution_id", None), _fields(record)) == (
            async_handle.execution_id,
            ("async_logs", 0, None),
        )
    assert not hasattr(by_message["outside"], "execution_id")


def test_the_json_formatter_writes_one_object_per_line() -> None:
    record = logging.LogRecord(
        "myapp", logging.WARNING, __file__, 1, "failed: %s", ("a\nb",), exc_info=None
    )
    record.execution_id = "te_x"
    record.task_id = "t"
    record.attempt = 2
    record.status = "failed"
    record.retry_delay_ms = 20.0
    try:
        raise KeyError("sku")
    except KeyError as error:
        record.exc_info = (KeyError, error, error.__traceback__)
    line = JsonLogFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert list(entry)[:9] == [
        "time",
        "level",
        "logger",
        "message",
        "pid",
        "execution_id",
        "task_id",
        "attempt",
        "status",
    ]
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "myapp"
    assert entry["message"] == "failed: a\nb"
    assert (entry["execution_id"], entry["task_id"], entry["attempt"], entry["status"]) == (
        "te_x",
        "t",
        2,
        "failed",
    )
    assert entry["retry_delay_ms"] == 20.0
    assert entry["exc_info"].startswith("Traceback (most recent call last):\n")
    assert entry["exc_info"].endswith("KeyError: 'sku'")
    assert entry["time"].endswith("+00:00")
