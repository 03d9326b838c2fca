"""Guarantee 6: bad input gets a clear error and stores nothing.

One table of cases, run on SQLite and on PostgreSQL. Each case does one wrong thing against an
executor whose storage already holds an execution; the test checks the exception type and
message, then compares a full dump of the executions table and of its migrations table (and the
list of tables) with the dump taken before: not one byte may have changed.

Two refusals necessarily write, and are checked apart: a claimed row whose task is not
registered in the claiming executor is failed with a clear error, and so is an attempt whose
output exceeds the size limit.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest

from durable_execution import (
    DurableExecutionError,
    DurableExecutionNotFoundError,
    DurableExecutor,
    RetryOptions,
    TaskContext,
)
from durable_execution.storage import DurableStorage, open_storage
from durable_execution.storage.errors import SchemaTooNewError
from durable_execution.tasks import Task, TaskEnqueueOptions

from . import _raw_sql as raw


@dataclass(frozen=True)
class Env:
    url: str
    storage: DurableStorage
    executor: DurableExecutor
    known: Task[int, int]  # registered, with one stored execution
    existing_execution_id: str


def _echo(ctx: TaskContext, value: int) -> int:
    return value


Case = Callable[[Env], Awaitable[object]]


async def _register(env: Env, **options: Any) -> object:  # Any: deliberately wrong values
    return env.executor.task(run=_echo, **options)


def _enqueue_with(options: TaskEnqueueOptions) -> Case:
    async def case(env: Env) -> object:
        return await env.executor.enqueue_task(env.known, 1, options)

    return case


def _enqueue_input(value: object) -> Case:
    async def case(env: Env) -> object:
        return await env.executor.enqueue_task(cast("Task[object, int]", env.known), value)

    return case


async def _enqueue_oversize_with_small_limit(env: Env) -> object:
    small = DurableExecutor(env.storage, max_serialized_size_bytes=1000)
    task = small.task(id="limited", timeout_ms=1000, run=_echo)
    return await small.enqueue_task(cast("Task[str, int]", task), "x" * 1001)


async def _enqueue_unknown_task(env: Env) -> object:
    other = DurableExecutor(env.storage)
    stranger = other.task(id="stranger", timeout_ms=1000, run=_echo)
    return await env.executor.enqueue_task(stranger, 1)


async def _handle_with_wrong_task(env: Env) -> object:
    other = env.executor.task(id="other", timeout_ms=1000, run=_echo)
    return await env.executor.get_task_handle(other, env.existing_execution_id)


async def _handle_of_missing_execution(env: Env) -> object:
    return await env.executor.get_task_handle(env.known, "te_000000000000000000000000")


async def _handle_with_nul(env: Env) -> object:
    return await env.executor.get_task_handle(env.known, "te_00000000000\x000000000000")


def _executor_with(**options: Any) -> Case:  # Any: deliberately wrong values
    async def case(env: Env) -> object:
        return DurableExecutor(env.storage, **options)

    return case


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _open(url: Callable[[Env], str], **options: Any) -> Case:  # Any: deliberately wrong values
    async def case(env: Env) -> object:
        async with open_storage(url(env), **options):
            return None

    return case


def _own_url(env: Env) -> str:
    return env.url


CASES: dict[str, tuple[Case, type[Exception], str]] = {
    "empty task id": (
        lambda env: _register(env, id="", timeout_ms=1000),
        DurableExecutionError,
        r"^Id cannot be empty$",
    ),
    "task id with bad characters": (
        lambda env: _register(env, id="no-dashes; DROP", timeout_ms=1000),
        DurableExecutionError,
        r"^Id can only contain alphanumeric characters and underscores$",
    ),
    "task id too long": (
        lambda env: _register(env, id="x" * 1000, timeout_ms=1000),
        DurableExecutionError,
        r"^Id cannot be longer than \d+ characters$",
    ),
    "duplicate task id": (
        lambda env: _register(env, id="known", timeout_ms=1000),
        DurableExecutionError,
        r"^Task known already exists",
    ),
    "zero timeout at registration": (
        lambda env: _register(env, id="t", timeout_ms=0),
        DurableExecutionError,
        r"timeout_ms",
    ),
    "non-integer timeout at registration": (
        lambda env: _register(env, id="t", timeout_ms="1000"),
        DurableExecutionError,
        r"timeout_ms",
    ),
    "negative max_attempts at registration": (
        lambda env: _register(
            env, id="t", timeout_ms=1000, retry_options=RetryOptions(max_attempts=-1)
        ),
        DurableExecutionError,
        r"^Invalid retry options for task t: max_attempts must be an integer >= 0, got -1$",
    ),
    "non-integer sleep at registration": (
        lambda env: _register(env, id="t", timeout_ms=1000, sleep_ms_before_run="10"),
        DurableExecutionError,
        r"sleep_ms_before_run",
    ),
    "negative timeout at enqueue": (
        _enqueue_with(TaskEnqueueOptions(timeout_ms=-1)),
        DurableExecutionError,
        r"timeout_ms",
    ),
    "bad retry options at enqueue": (
        _enqueue_with(
            TaskEnqueueOptions(retry_options=RetryOptions(max_attempts=1, base_delay_ms=-3))
        ),
        DurableExecutionError,
        r"^Invalid enqueue options for task known: Invalid retry options for task known:"
        r" base_delay_ms must be an integer >= 0, got -3$",
    ),
    "non-integer sleep at enqueue": (
        _enqueue_with(TaskEnqueueOptions(sleep_ms_before_run=1.5)),  # type: ignore[arg-type]
        DurableExecutionError,
        r"sleep_ms_before_run",
    ),
    "timeout_ms=sys.maxsize at enqueue": (
        _enqueue_with(TaskEnqueueOptions(timeout_ms=sys.maxsize)),
        ValueError,
        r"^Invalid enqueue options for task known: Invalid timeout value for task known:"
        r" timeout_ms must be at most 1099511627776 \(2\*\*40 ms, about 34.8 years\),"
        rf" got {sys.maxsize}$",
    ),
    "huge timeout at registration": (
        lambda env: _register(env, id="t", timeout_ms=10**30),
        ValueError,
        r"timeout_ms must be at most 1099511627776 \(2\*\*40 ms",
    ),
    "huge sleep at enqueue": (
        _enqueue_with(TaskEnqueueOptions(sleep_ms_before_run=10**30)),
        ValueError,
        r"sleep_ms_before_run must be at most 1099511627776 \(2\*\*40 ms",
    ),
    "huge max_attempts at enqueue": (
        _enqueue_with(TaskEnqueueOptions(retry_options=RetryOptions(max_attempts=2**31))),
        ValueError,
        r"max_attempts must be at most 2147483647 \(2\*\*31 - 1\), got 2147483648$",
    ),
    "huge base_delay_ms at enqueue": (
        _enqueue_with(
            TaskEnqueueOptions(retry_options=RetryOptions(max_attempts=1, base_delay_ms=2**63))
        ),
        ValueError,
        r"base_delay_ms must be at most 1099511627776",
    ),
    "huge max_delay_ms at enqueue": (
        _enqueue_with(
            TaskEnqueueOptions(retry_options=RetryOptions(max_attempts=1, max_delay_ms=2**63))
        ),
        ValueError,
        r"max_delay_ms must be at most 1099511627776",
    ),
    "huge delay_multiplier at enqueue": (
        _enqueue_with(
            TaskEnqueueOptions(retry_options=RetryOptions(max_attempts=1, delay_multiplier=1e300))
        ),
        ValueError,
        r"delay_multiplier must be at most 1000, got 1e\+300$",
    ),
    "huge expire_ms": (
        _executor_with(expire_ms=sys.maxsize),
        ValueError,
        r"^expire_ms must be at most 1099511627776 \(2\*\*40 ms, about 34.8 years\)",
    ),
    "huge poll interval": (
        _executor_with(background_process_intra_batch_sleep_ms=10**30),
        ValueError,
        r"^background_process_intra_batch_sleep_ms must be at most 1099511627776",
    ),
    "huge concurrency": (
        _executor_with(max_concurrent_task_executions=10**30),
        ValueError,
        r"^max_concurrent_task_executions must be at most 2147483647",
    ),
    "non-integer concurrency": (
        _executor_with(max_concurrent_task_executions=2.5),
        ValueError,
        r"^max_concurrent_task_executions must be an integer >= 1, got 2.5$",
    ),
    "huge max_lease_expiries": (
        _executor_with(max_lease_expiries=2**40),
        ValueError,
        r"^max_lease_expiries must be at most 2147483647",
    ),
    "huge max_serialized_size_bytes": (
        _executor_with(max_serialized_size_bytes=2**40),
        ValueError,
        r"^max_serialized_size_bytes must be at most 1073741824 \(2\*\*30, PostgreSQL's",
    ),
    "execution id with a NUL": (
        _handle_with_nul,
        DurableExecutionNotFoundError,
        r"^Execution 'te_00000000000\\x000000000000' not found: an execution id contains only"
        r" letters, digits and underscores$",
    ),
    "input nested 500 levels deep": (
        _enqueue_input(_nested(500)),
        DurableExecutionError,
        r"^Error serializing the input of task known: "
        r"the value is nested more than 200 levels deep",
    ),
    "unserializable input": (
        _enqueue_input(object()),
        DurableExecutionError,
        r"^Error serializing the input of task known: Object of type object is not serializable$",
    ),
    "input over the default 1 MiB": (
        _enqueue_input("x" * (1 << 20)),
        DurableExecutionError,
        r"^Error serializing the input of task known: the serialized value is 1048578 bytes,"
        r" more than"
        r" max_serialized_size_bytes \(1048576\)$",
    ),
    "input over a configured limit": (
        _enqueue_oversize_with_small_limit,
        DurableExecutionError,
        r"is 1003 bytes, more than max_serialized_size_bytes \(1000\)$",
    ),
    "unknown task at enqueue": (
        _enqueue_unknown_task,
        DurableExecutionNotFoundError,
        r"^Task stranger not found",
    ),
    "get_task_handle with the wrong task": (
        _handle_with_wrong_task,
        DurableExecutionNotFoundError,
        r"^Execution te_\w+ belongs to task known, not other$",
    ),
    "get_task_handle of a missing execution": (
        _handle_of_missing_execution,
        DurableExecutionNotFoundError,
        r"^Execution te_0+ not found$",
    ),
    "malformed storage URL: no scheme": (
        _open(lambda env: "just-a-path.db"),
        ValueError,
        r"^malformed storage URL 'just-a-path.db': no scheme",
    ),
    "malformed storage URL: bad port, password masked": (
        _open(lambda env: "postgresql://user:hunter2@localhost:notaport/db"),
        ValueError,
        r"^malformed storage URL 'postgresql://user:\*\*\*@localhost:notaport/db'",
    ),
    "malformed storage URL: sqlite with a host": (
        _open(lambda env: "sqlite://host/file.db"),
        ValueError,
        r"^malformed storage URL 'sqlite://host/file.db'",
    ),
    "unsupported storage URL scheme": (
        _open(lambda env: "mysql://localhost/db"),
        ValueError,
        r"^unsupported storage URL scheme 'mysql'",
    ),
    "table-name injection": (
        _open(_own_url, table_name='x"; DROP TABLE durable_task_executions; --'),
        ValueError,
        r"^invalid table name 'x\"; DROP TABLE durable_task_executions; --': a table name must"
        r" match",
    ),
    "table name that is a keyword": (
        _open(_own_url, table_name="order"),
        ValueError,
        r"^invalid table name 'order': it is a reserved word of SQLite or PostgreSQL",
    ),
    "table name that is a keyword, any case": (
        _open(_own_url, table_name="User"),
        ValueError,
        r"^invalid table name 'User': it is a reserved word of SQLite or PostgreSQL",
    ),
    "table name with a space": (
        _open(_own_url, table_name="two words"),
        ValueError,
        r"^invalid table name 'two words': a table name must match",
    ),
}


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[Env]:
    async with open_storage(db_url) as storage:
        executor = DurableExecutor(storage)  # never started: nothing moves behind the test
        known = executor.task(id="known", timeout_ms=1000, run=_echo)
        handle = await executor.enqueue_task(known, 1)
        yield Env(db_url, storage, executor, known, handle.execution_id)


def _snapshot(url: str) -> tuple[object, ...]:
    return (
        raw.tables(url),
        raw.dump(url),
        raw.dump(url, f"{raw.TABLE}_migrations"),
    )


@pytest.mark.parametrize("name", sorted(CASES))
async def test_bad_input_is_refused_clearly_and_stores_nothing(env: Env, name: str) -> None:
    case, error_type, message = CASES[name]
    before = _snapshot(env.url)
    assert before[1], "the table should hold the existing execution"
    with pytest.raises(error_type, match=message):
        await case(env)
    assert _snapshot(env.url) == before


async def test_schema_newer_than_the_code_is_refused(env: Env) -> None:
    postgres = env.url.startswith("postgresql")
    placeholder = "%s" if postgres else "?"
    applied_at = "now()" if postgres else "0"
    raw.execute(
        env.url,
        f"INSERT INTO {raw.TABLE}_migrations (version, name, applied_at)"
        f" VALUES ({placeholder}, {placeholder}, {applied_at})",
        (999, "from_the_future"),
    )
    before = _snapshot(env.url)
    with pytest.raises(SchemaTooNewError, match=r"^schema version 999 is newer than this code"):
        async with open_storage(env.url):
            pass
    assert _snapshot(env.url) == before


async def test_claimed_row_of_a_task_not_registered_here_fails_clearly(env: Env) -> None:
    # ``env.executor`` stored an execution of "known"; this executor has never heard of it.
    stranger = DurableExecutor(env.storage, background_process_intra_batch_sleep_ms=50)
    helper = stranger.task(id="helper", timeout_ms=1000, run=_echo)
    async with stranger:
        done = await stranger.enqueue_task(helper, 5)
        assert (await done.wait_and_get_finished_execution(timeout_ms=20_000)).status == (
            "completed"
        )
        handle = await env.executor.get_task_handle(env.known, env.existing_execution_id)
        execution = await handle.wait_and_get_finished_execution(timeout_ms=20_000)
    assert execution.status == "failed"
    assert execution.error.message == (
        "Task known not found. Register it with every executor that shares this storage"
    )
    assert execution.error.error_type == "not_found"


async def test_output_over_the_limit_fails_the_execution_and_stores_no_output(env: Env) -> None:
    limited = DurableExecutor(
        env.storage, max_serialized_size_bytes=100, background_process_intra_batch_sleep_ms=50
    )

    def big(ctx: TaskContext, size: int) -> str:
        return "y" * size

    big_task = limited.task(id="big", timeout_ms=1000, run=big)
    async with limited:
        handle = await limited.enqueue_task(big_task, 500)
        execution = await handle.wait_and_get_finished_execution(timeout_ms=20_000)
    assert execution.status == "failed"
    assert execution.error.message == (
        "Error serializing the output of task big: the serialized value is 502 bytes, more than"
        " max_serialized_size_bytes (100)"
    )
    assert not execution.error.is_retryable
    assert "y" * 500 not in str(raw.dump(env.url))
