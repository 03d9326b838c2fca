"""A worker app: the tasks live in ``register``; ``durable-execution worker`` runs them.

Start one or more workers (on PostgreSQL, on as many machines as you like)::

    durable-execution worker worker_app:register --app-dir examples --db sqlite:///worker.db

Enqueue from any other process (a web app, a cron job…) and wait for the results::

    python examples/worker_app.py --db sqlite:///worker.db Ada Grace Linus

Both sides call ``register``: the worker on the executor it creates, the enqueuing process on an
executor it never starts. That keeps every task id in one place, which matters: every worker on
a table must know every task enqueued there.
"""

import argparse
import asyncio
import logging
from dataclasses import dataclass

from durable_execution import DurableExecutor, RetryOptions, Task, TaskContext, open_storage

logger = logging.getLogger(__name__)  # the worker's log format applies to task logs too


@dataclass(frozen=True)
class Tasks:
    welcome: Task[str, str]


def register(executor: DurableExecutor) -> Tasks:
    """Register this app's tasks on ``executor`` and return them for enqueuing code."""

    @executor.task(
        id="welcome",
        timeout_ms=10_000,
        retry_options=RetryOptions(max_attempts=3, base_delay_ms=500, delay_multiplier=2),
    )
    async def welcome(ctx: TaskContext, name: str) -> str:
        await asyncio.sleep(0.2)  # stands for real work: an e-mail, an API call…
        logger.info("Welcomed %s (%s, attempt %d)", name, ctx.execution_id, ctx.attempt)
        return f"Welcome, {name}!"

    return Tasks(welcome=welcome)


async def enqueue(db_url: str, names: list[str], wait: bool) -> None:
    async with open_storage(db_url) as storage:
        executor = DurableExecutor(storage)  # never started: this process only enqueues
        tasks = register(executor)
        handles = [await executor.enqueue_task(tasks.welcome, name) for name in names]
        for handle in handles:
            print(f"enqueued {handle.task_id} {handle.execution_id}", flush=True)
        if not wait:
            return
        for handle in handles:
            # No executor runs here, so the handle polls the database for the worker's result.
            execution = await handle.wait_and_get_finished_execution(polling_interval_ms=100)
            if execution.status == "completed":
                print(f"{handle.execution_id}: {execution.output}")
            else:
                print(f"{handle.execution_id}: {execution.status}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Enqueue welcome tasks for a worker to run.")
    parser.add_argument("names", nargs="+")
    parser.add_argument("--db", default="sqlite:///worker.db", help="storage URL")
    parser.add_argument("--no-wait", action="store_true", help="enqueue and exit")
    args = parser.parse_args()
    asyncio.run(enqueue(args.db, args.names, wait=not args.no_wait))


if __name__ == "__main__":
    main()
