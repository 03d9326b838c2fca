"""A worker app with sequential chains: ``durable-execution worker chain_app:register``.

The tests import it too, as the enqueuing process, so both processes register the chains
independently, exactly as a web process and a worker would.

Each step appends a line to ``<runs>/<step>`` (the directory travels in the chain's input), so a
test counts how often each step ran across processes and crashes. The ``hold`` step writes
``<runs>/hold.started`` and then waits until the test creates ``<runs>/release``: a test can kill
the worker while the chain is between its first and last step.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypedDict

from durable_execution import DurableExecutor, Task, TaskContext

# A short lease grace after a step's timeout, so that a killed worker's step is taken over in
# seconds (the lease ends timeout_ms + expire_ms after the claim).
QUICK_EXPIRE_MS: Final = 500
HOLD_TIMEOUT_MS: Final = 5_000


class Payload(TypedDict):
    runs: str
    value: int


@dataclass(frozen=True)
class Chains:
    derived: Task[Payload, str]
    named: Task[Payload, str]


def _count_run(payload: Payload, step: str) -> None:
    with (Path(payload["runs"]) / step).open("a") as runs:
        runs.write("run\n")


def register(executor: DurableExecutor) -> Chains:
    @executor.task(id="chain_prepare", timeout_ms=10_000)
    async def prepare(ctx: TaskContext, payload: Payload) -> Payload:
        _count_run(payload, "prepare")
        return {"runs": payload["runs"], "value": payload["value"] + 1}

    @executor.task(id="chain_hold", timeout_ms=HOLD_TIMEOUT_MS)
    async def hold(ctx: TaskContext, payload: Payload) -> Payload:
        _count_run(payload, "hold")
        runs = Path(payload["runs"])
        (runs / "hold.started").write_text(ctx.execution_id)
        # Another process creates the file: polling it is the only way to hear of it.
        while not (runs / "release").exists():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return {"runs": payload["runs"], "value": payload["value"] * 10}

    @executor.task(id="chain_finish", timeout_ms=10_000)
    async def finish(ctx: TaskContext, payload: Payload) -> str:
        _count_run(payload, "finish")
        return f"finished with {payload['value']}"

    return Chains(
        derived=executor.sequential_tasks(prepare, hold, finish),
        named=executor.sequential_tasks(prepare, hold, finish, id="order_flow"),
    )


def register_with_quick_expiry(executor: DurableExecutor) -> Chains:
    """``register`` on an executor whose leases end ``QUICK_EXPIRE_MS`` after a step's timeout.

    The worker command has no option for ``expire_ms`` yet, so the app sets it on the executor
    it is given (a test-only shortcut through a private attribute).
    """
    runtime = executor._rt
    runtime.config = dataclasses.replace(runtime.config, expire_ms=QUICK_EXPIRE_MS)
    return register(executor)
