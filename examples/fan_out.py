"""Fan-out with finalize: a parent starts one child per document, a finalize task adds them up.

Each child is its own durable execution: it is retried, timed out and recovered on its own, and
the finalize task runs once every child completed (if one fails for good, the parent fails with
``children_tasks_failed`` and the finalize task never runs).

    python examples/fan_out.py [DB_URL]    # default: sqlite:///fan_out.db
"""

import asyncio
import sys

from durable_execution import (
    ChildTask,
    DurableExecutor,
    FinalizeTask,
    FinalizeTaskInput,
    ParentTaskResult,
    RetryOptions,
    TaskContext,
    open_storage,
)

DOCUMENTS = [
    "the quick brown fox",
    "jumps over the lazy dog",
    "durable tasks survive crashes",
]


async def main(db_url: str) -> None:
    async with open_storage(db_url) as storage:
        executor = DurableExecutor(storage)

        # A sync function: the executor runs it in a worker thread, off the event loop.
        @executor.task(id="count_words", timeout_ms=5_000, retry_options=RetryOptions(3, 100))
        def count_words(ctx: TaskContext, text: str) -> int:
            return len(text.split())

        def split(ctx: TaskContext, documents: list[str]) -> ParentTaskResult[int]:
            return ParentTaskResult(
                output=len(documents),
                children_tasks=[ChildTask(count_words, text) for text in documents],
            )

        def add_up(ctx: TaskContext, done: FinalizeTaskInput[list[str], int]) -> dict[str, int]:
            # Children outputs come back in the order the children were listed.
            counts = [child.output for child in done.children_tasks_outputs]
            return {
                "documents": done.output,
                "words": sum(count for count in counts if isinstance(count, int)),
            }

        count_all = executor.parent_task(
            id="count_all",
            timeout_ms=5_000,
            run_parent=split,
            finalize_task=FinalizeTask(id="count_all_add_up", timeout_ms=5_000, run=add_up),
        )

        async with executor:
            handle = await executor.enqueue_task(count_all, DOCUMENTS)
            execution = await handle.wait_and_get_finished_execution()
            if execution.status == "completed":
                totals = execution.output  # typed dict[str, int]: the finalize task's output
                print(f"{totals['documents']} documents, {totals['words']} words")
            else:
                print(f"{execution.status}: {execution}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///fan_out.db"))
