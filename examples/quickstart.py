"""Quickstart: one durable task, stored in a SQLite file, run and awaited.

python examples/quickstart.py [DB_URL]    # default: sqlite:///quickstart.db
"""

import asyncio
import sys

from durable_execution import DurableExecutor, TaskContext, open_storage


async def main(db_url: str) -> None:
    async with open_storage(db_url) as storage:  # creates the schema on first use
        executor = DurableExecutor(storage)

        @executor.task(id="greet", timeout_ms=5_000)
        async def greet(ctx: TaskContext, name: str) -> str:
            return f"Hello, {name}!"

        async with executor:  # starts the background processing, shuts it down on exit
            handle = await executor.enqueue_task(greet, "world")
            execution = await handle.wait_and_get_finished_execution()
            if execution.status == "completed":
                print(execution.output)  # Hello, world!
            else:
                print(f"{execution.status}: {execution}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///quickstart.db"))
