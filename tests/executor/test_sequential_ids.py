"""Sequential chains have stable ids: every executor that registers the same steps names them alike.

Executions refer to their task by id, so a chain enqueued through one executor must be found by
another (another process, or the successor of a crashed one) under the very same ids, the internal
wrapper and finalize ids included.
"""

from __future__ import annotations

from typing import cast

import pytest

from durable_execution import (
    DurableExecutionError,
    DurableExecutor,
    InMemoryStorage,
    Task,
    TaskContext,
)
from durable_execution.storage import DurableStorage

from ._support import MakeExecutor, wait_completed


def _add_one(ctx: TaskContext, value: int) -> int:
    return value + 1


def _double(ctx: TaskContext, value: int) -> int:
    return value * 2


def _show(ctx: TaskContext, value: int) -> str:
    return f"={value}"


def _steps(executor: DurableExecutor) -> tuple[Task[int, int], Task[int, int], Task[int, str]]:
    return (
        executor.task(id="add_one", timeout_ms=1000, run=_add_one),
        executor.task(id="double", timeout_ms=1000, run=_double),
        executor.task(id="show", timeout_ms=1000, run=_show),
    )


def _fresh() -> DurableExecutor:
    return DurableExecutor(InMemoryStorage())


def _refused(raised: pytest.ExceptionInfo[DurableExecutionError], message: str) -> None:
    assert str(raised.value) == message
    assert raised.value.is_retryable is False


def test_two_executors_registering_the_same_steps_get_the_same_ids() -> None:
    first, second = _fresh(), _fresh()
    chain_1 = first.sequential_tasks(*_steps(first))
    chain_2 = second.sequential_tasks(*_steps(second))
    assert chain_1.id == chain_2.id
    assert chain_1.id.startswith("st_")
    assert first.registered_task_ids == second.registered_task_ids
    base = chain_1.id
    assert first.registered_task_ids == {
        "add_one",
        "double",
        "show",
        base,
        f"{base}_finalize_1",
        f"{base}_finalize_2",
        f"{base}_from_2",
        f"{base}_from_2_finalize_1",
        f"{base}_from_2_finalize_2",
    }


def test_the_derived_id_depends_on_the_steps_and_their_order() -> None:
    executor = _fresh()
    add_one, double, show = _steps(executor)
    ids = {
        executor.sequential_tasks(add_one, double).id,
        executor.sequential_tasks(double, add_one).id,
        executor.sequential_tasks(add_one, double, show).id,
        executor.sequential_tasks(add_one, add_one).id,
    }
    assert len(ids) == 4


def test_an_explicit_id_names_the_chain_and_its_internal_tasks() -> None:
    first, second = _fresh(), _fresh()
    chain = first.sequential_tasks(*_steps(first), id="order_flow")
    assert chain.id == "order_flow"
    assert second.sequential_tasks(*_steps(second), id="order_flow").id == "order_flow"
    assert first.registered_task_ids == second.registered_task_ids
    assert first.registered_task_ids - {"add_one", "double", "show"} == {
        "order_flow",
        "st_order_flow_finalize_1",
        "st_order_flow_finalize_2",
        "st_order_flow_from_2",
        "st_order_flow_from_2_finalize_1",
        "st_order_flow_from_2_finalize_2",
    }


def test_registering_the_same_chain_again_returns_it() -> None:
    executor = _fresh()
    steps = _steps(executor)
    derived = executor.sequential_tasks(*steps)
    named = executor.sequential_tasks(*steps, id="order_flow")
    registered = executor.registered_task_ids
    assert executor.sequential_tasks(*steps).id == derived.id
    assert executor.sequential_tasks(*steps, id="order_flow").id == "order_flow"
    assert executor.registered_task_ids == registered
    assert named.id == "order_flow"


def test_other_steps_under_a_taken_chain_id_are_refused_and_nothing_is_registered() -> None:
    executor = _fresh()
    add_one, double, show = _steps(executor)
    executor.sequential_tasks(add_one, double, id="order_flow")
    registered = executor.registered_task_ids
    with pytest.raises(DurableExecutionError) as raised:
        executor.sequential_tasks(add_one, double, show, id="order_flow")
    _refused(
        raised,
        "Sequential chain order_flow is already registered with steps add_one → double; it"
        " cannot also name steps add_one → double → show. Give each chain its own id",
    )
    assert executor.registered_task_ids == registered


def test_a_chain_id_taken_by_a_task_is_refused() -> None:
    executor = _fresh()
    add_one, double, _ = _steps(executor)
    with pytest.raises(DurableExecutionError) as raised:
        executor.sequential_tasks(add_one, double, id="show")
    _refused(
        raised,
        "Cannot register sequential chain show: the task id show is already taken by another"
        " task. Task ids, chain ids and the chains' internal st_ ids included, must be unique"
        " within an executor",
    )


def test_a_chain_whose_internal_id_is_taken_registers_nothing() -> None:
    executor = _fresh()
    add_one, double, show = _steps(executor)
    executor.task(id="st_flow_from_2_finalize_1", timeout_ms=1000, run=_add_one)
    registered = executor.registered_task_ids
    with pytest.raises(DurableExecutionError) as raised:
        executor.sequential_tasks(add_one, double, show, id="flow")
    assert str(raised.value).startswith(
        "Cannot register sequential chain flow: its internal task id st_flow_from_2_finalize_1"
        " is already taken by another task."
    )
    assert executor.registered_task_ids == registered


@pytest.mark.parametrize(
    ("chain_id", "message"),
    [
        ("", "Invalid sequential chain id '': Id cannot be empty"),
        (
            "order-flow",
            "Invalid sequential chain id 'order-flow': Id can only contain alphanumeric"
            " characters and underscores",
        ),
        (
            "x" * 256,
            f"Invalid sequential chain id {'x' * 256!r}: Id cannot be longer than 255 characters",
        ),
        (
            "x" * 240,
            f"Sequential chain id {'x' * 240!r} is too long for a chain of 3 steps: its internal"
            f" task ids (such as st_{'x' * 240}_from_2_finalize_2) would exceed 255 characters."
            " Use at most 234 characters",
        ),
        (cast(str, 7), "Sequential chain id must be a str, got int"),
    ],
)
def test_invalid_chain_ids_are_refused(chain_id: str, message: str) -> None:
    executor = _fresh()
    steps = _steps(executor)
    with pytest.raises(DurableExecutionError) as raised:
        executor.sequential_tasks(*steps, id=chain_id)
    _refused(raised, message)
    assert executor.registered_task_ids == {"add_one", "double", "show"}


def test_the_longest_chain_id_that_fits_is_accepted() -> None:
    executor = _fresh()
    chain = executor.sequential_tasks(*_steps(executor), id="x" * 234)
    assert max(len(task_id) for task_id in executor.registered_task_ids) == 255
    assert chain.id == "x" * 234


def test_a_one_step_chain_cannot_take_an_id() -> None:
    executor = _fresh()
    add_one, _, _ = _steps(executor)
    with pytest.raises(DurableExecutionError) as raised:
        executor.sequential_tasks(add_one, id="single")
    assert str(raised.value).startswith(
        "sequential_tasks got one task (add_one) and id 'single': a chain of one task is that"
        " task itself"
    )
    assert executor.sequential_tasks(add_one) is add_one


@pytest.mark.parametrize("chain_id", [None, "order_flow"])
async def test_a_chain_enqueued_through_one_executor_runs_in_another(
    storage: DurableStorage, make_executor: MakeExecutor, chain_id: str | None
) -> None:
    # As in two processes: the enqueuer never starts; the worker registers the chain itself.
    enqueuer = await make_executor(start=False)
    worker = await make_executor(start=False)
    chain = enqueuer.sequential_tasks(*_steps(enqueuer), id=chain_id)
    handle = await enqueuer.enqueue_task(chain, 4)
    worker_chain = worker.sequential_tasks(*_steps(worker), id=chain_id)
    await worker.start()
    execution = await wait_completed(
        await worker.get_task_handle(worker_chain, handle.execution_id)
    )
    assert execution.output == "=10"


async def test_a_long_named_chain_runs(executor: DurableExecutor) -> None:
    add_one, double, show = _steps(executor)
    chain = executor.sequential_tasks(add_one, double, add_one, double, add_one, show, id="long")
    assert (await wait_completed(await executor.enqueue_task(chain, 0))).output == "=7"
