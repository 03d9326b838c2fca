"""examples/wsgi_app.py, called in-process as a WSGI server would, on a SQLite file; then a
worker (an async executor with the example's ``register``) runs what the requests enqueued."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.util import setup_testing_defaults

from durable_execution import DurableExecutor, SyncClient, open_storage

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "wsgi_app.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wsgi_app_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(
    app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]],
    method: str,
    path: str,
    query: str = "",
) -> tuple[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    setup_testing_defaults(environ)
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        statuses.append(status)
        assert ("Content-Type", "application/json") in headers

    body = b"".join(app(environ, start_response))
    return statuses[0], json.loads(body)


def run_worker(example: ModuleType, url: str, until: Callable[[], bool]) -> None:
    async def main() -> None:
        async with open_storage(url) as storage:
            executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=20)
            example.register(executor)
            async with executor:
                deadline = time.monotonic() + 30
                while not until():
                    assert time.monotonic() < deadline, "the worker did not finish the work"
                    await asyncio.sleep(0.02)

    asyncio.run(main())


def test_requests_enqueue_and_a_worker_runs_them(tmp_path: Path) -> None:
    example = load_example()
    url = f"sqlite:///{tmp_path / 'web.db'}"
    with SyncClient(url) as client:
        app = example.make_app(client)
        # Concurrent requests share the one client, as the threading server's threads do.
        results: list[tuple[str, Any]] = []
        threads = [
            threading.Thread(
                target=lambda name=name: results.append(
                    call(app, "POST", "/welcome", f"name={name}")
                )
            )
            for name in ("Ada", "Grace", "Linus")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(status for status, _ in results) == ["202 Accepted"] * 3
        ids = [body["execution_id"] for _, body in results]
        assert call(app, "GET", f"/executions/{ids[0]}") == ("200 OK", {"status": "ready"})

        def all_done() -> bool:
            return all(
                call(app, "GET", f"/executions/{i}")[1]["status"] == "completed" for i in ids
            )

        run_worker(example, url, all_done)
        outputs = sorted(call(app, "GET", f"/executions/{i}")[1]["output"] for i in ids)
        assert outputs == ["Welcome, Ada!", "Welcome, Grace!", "Welcome, Linus!"]

        assert call(app, "POST", "/welcome")[0] == "400 Bad Request"
        assert call(app, "GET", "/executions/te_nothere")[0] == "404 Not Found"
        assert call(app, "GET", "/elsewhere")[0] == "404 Not Found"
