"""A sequential pipeline: each step is a durable task fed the previous step's output.

``sequential_tasks(extract, transform, load)`` is itself a task: enqueue it like any other. If
the process dies between steps, the finished steps are not run again; the pipeline resumes at
the step that was running. The ``transform`` step fails on its first attempt to show a retry.

    python examples/pipeline.py [DB_URL]    # default: sqlite:///pipeline.db
"""

import asyncio
import sys

from durable_execution import DurableExecutor, RetryOptions, TaskContext, open_storage


async def main(db_url: str) -> None:
    async with open_storage(db_url) as storage:
        executor = DurableExecutor(storage)

        @executor.task(id="extract", timeout_ms=5_000)
        async def extract(ctx: TaskContext, source: str) -> list[int]:
            return [len(word) for word in source.split()]

        @executor.task(
            id="transform",
            timeout_ms=5_000,
            retry_options=RetryOptions(max_attempts=2, base_delay_ms=100, delay_multiplier=2),
        )
        async def transform(ctx: TaskContext, lengths: list[int]) -> list[int]:
            if ctx.attempt == 0:
                raise ConnectionError("flaky upstream")  # retried after 100 ms
            return sorted(lengths, reverse=True)

        @executor.task(id="load", timeout_ms=5_000)
        async def load(ctx: TaskContext, lengths: list[int]) -> str:
            return f"stored {len(lengths)} values, largest {lengths[0]}"

        pipeline = executor.sequential_tasks(extract, transform, load)  # Task[str, str]

        async with executor:
            handle = await executor.enqueue_task(pipeline, "a pipeline of durable steps")
            execution = await handle.wait_and_get_finished_execution()
            if execution.status == "completed":
                print(execution.output)
            else:
                print(f"{execution.status}: {execution}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///pipeline.db"))
