"""A worker app whose tasks fail in the ways the worker must survive and report.

``durable-execution worker failing_app:register``; the tests import it too, to enqueue.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass

from durable_execution import DurableExecutor, RetryOptions, Task, TaskContext

logger = logging.getLogger("failing_app")


@dataclass(frozen=True)
class Tasks:
    exits: Task[int, None]
    slow: Task[float, str]
    lookup: Task[str, int]


def register(executor: DurableExecutor) -> Tasks:
    @executor.task(id="exits", timeout_ms=10_000)
    def exits(ctx: TaskContext, status: int) -> None:
        logger.info("exits started %s", ctx.execution_id)
        sys.exit(status)

    @executor.task(id="slow", timeout_ms=30_000)
    async def slow(ctx: TaskContext, seconds: float) -> str:
        logger.info("slow started %s", ctx.execution_id)
        await asyncio.sleep(seconds)
        logger.info("slow finished %s", ctx.execution_id)
        return f"slept {seconds}"

    @executor.task(
        id="lookup", timeout_ms=10_000, retry_options=RetryOptions(max_attempts=1, base_delay_ms=50)
    )
    def lookup(ctx: TaskContext, sku: str) -> int:
        logger.info("looking up %s", sku)
        stock: dict[str, int] = {}
        return stock[sku]

    return Tasks(exits=exits, slow=slow, lookup=lookup)
