"""The worker app the CLI tests run: ``durable-execution worker cli_app:register``.

The tests import it too (as enqueuers), exactly as a user's enqueuing process would.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from durable_execution import DurableExecutor, Task, TaskContext

logger = logging.getLogger("cli_app")


@dataclass(frozen=True)
class Tasks:
    echo: Task[str, str]
    slow: Task[float, str]
    until_cancelled: Task[None, str]


def register(executor: DurableExecutor) -> Tasks:
    @executor.task(id="echo", timeout_ms=10_000)
    async def echo(ctx: TaskContext, value: str) -> str:
        logger.info("echo %s", value)
        return f"echo: {value}"

    @executor.task(id="slow", timeout_ms=30_000)
    async def slow(ctx: TaskContext, seconds: float) -> str:
        logger.info("slow started %s", ctx.execution_id)
        await asyncio.sleep(seconds)
        logger.info("slow finished %s", ctx.execution_id)
        return f"slept {seconds}"

    @executor.task(id="until_cancelled", timeout_ms=60_000)
    async def until_cancelled(ctx: TaskContext, value: None) -> str:
        logger.info("until_cancelled started %s", ctx.execution_id)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            logger.info("until_cancelled stopped %s", ctx.execution_id)
            raise
        return "never cancelled"

    return Tasks(echo=echo, slow=slow, until_cancelled=until_cancelled)


def register_nothing(executor: DurableExecutor) -> None:
    """A broken app for the tests: it registers no task."""


def register_badly(executor: DurableExecutor) -> None:
    """A broken app for the tests: registering raises."""
    raise RuntimeError("no tasks today")


NOT_CALLABLE = 42
