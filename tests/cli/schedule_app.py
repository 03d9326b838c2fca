"""A worker app with a schedule: ``durable-execution worker schedule_app:register``."""

from __future__ import annotations

from durable_execution import DurableExecutor, TaskContext


def register(executor: DurableExecutor) -> None:
    @executor.task(id="heartbeat", timeout_ms=5_000)
    def heartbeat(ctx: TaskContext, source: str) -> str:
        return f"alive: {source}"

    executor.schedule(heartbeat, id="heartbeat-often", every_ms=200, input="schedule_app")
