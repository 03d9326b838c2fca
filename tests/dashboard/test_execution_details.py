"""The execution page shows an execution's priority and idempotency key (escaped: it is the
user's text)."""

from __future__ import annotations

from pathlib import Path

from durable_execution import DurableExecutor, TaskContext, TaskEnqueueOptions, open_storage

from ._server import fetch, serving
from .conftest import run_async, settings, sqlite_url


async def _enqueue_keyed(db: str) -> str:
    async with open_storage(db) as storage:
        executor = DurableExecutor(storage)

        @executor.task(id="keyed", timeout_ms=5_000)
        def keyed(ctx: TaskContext, value: str) -> str:
            return value

        options = TaskEnqueueOptions(idempotency_key="<b>order-42</b>", priority=-3)
        return (await executor.enqueue_task(keyed, "input", options)).execution_id


def test_the_page_shows_priority_and_key(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "keyed.db")
    execution_id = run_async(_enqueue_keyed(db))
    with serving(settings(db)) as url:
        body = fetch(f"{url}/executions/{execution_id}").body
    assert "<dt>priority</dt><dd>-3</dd>" in body
    assert '<dd class="mono">&lt;b&gt;order-42&lt;/b&gt;</dd>' in body
    assert "<b>order-42</b>" not in body
