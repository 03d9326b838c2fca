"""A trace crosses processes through the database (issue 15): a parent enqueued here, inside a
span of this process, runs with its children in a ``durable-execution worker`` process whose
spans land in the same trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from opentelemetry import trace

from durable_execution import DurableExecutor, open_storage

from ._providers import installed, spans_of
from .otel_app import SPANS_FILE_VARIABLE, register

SCRIPT = Path(sys.executable).with_name("durable-execution")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'worker.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _log(path: Path) -> str:
    return path.read_text(errors="replace")


@contextmanager
def running_worker(db_url: str, log_path: Path, spans_file: Path) -> Iterator[int]:
    """A started ``durable-execution worker`` running ``otel_app``; yields its pid."""
    env = {**os.environ, SPANS_FILE_VARIABLE: str(spans_file)}
    env.pop("DURABLE_EXECUTION_DB", None)
    app_dir = str(Path(__file__).parent)
    command = [str(SCRIPT), "worker", "otel_app:register_traced", "--app-dir", app_dir]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--db", db_url, "--poll-interval-ms", "50"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while "Worker started" not in _log(log_path):
            assert process.poll() is None, _log(log_path)
            assert time.monotonic() < deadline, _log(log_path)
            time.sleep(0.05)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


async def test_a_child_run_by_a_worker_process_joins_the_trace_enqueued_here(
    db_url: str, tmp_path: Path
) -> None:
    installed()
    spans_file = tmp_path / "worker-spans.jsonl"
    log_path = tmp_path / "worker.log"
    with running_worker(db_url, log_path, spans_file) as worker_pid:
        async with open_storage(db_url) as storage:
            executor = DurableExecutor(storage)  # never started: the worker runs everything
            tasks = register(executor)
            with trace.get_tracer("test").start_as_current_span("request") as request:
                handle = await executor.enqueue_task(tasks.parent, 3)
            execution = await handle.wait_and_get_finished_execution(
                polling_interval_ms=50, timeout_ms=30_000
            )
        assert execution.status == "completed", _log(log_path)

    request_context = request.get_span_context()
    [enqueue] = [
        span
        for span in spans_of("otel_parent", "durable_execution.enqueue")
        if span.attributes
        and span.attributes["durable_execution.execution_id"] == handle.execution_id
    ]
    assert enqueue.context is not None
    assert enqueue.parent is not None
    assert enqueue.parent.span_id == request_context.span_id
    worker_spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    by_task: dict[str, list[dict[str, object]]] = {}
    for span in worker_spans:
        by_task.setdefault(span["attributes"]["durable_execution.task_id"], []).append(span)
    [parent] = by_task["otel_parent"]
    children = by_task["otel_child"]
    assert len(children) == 3
    # Run by the worker, not here, and all in the trace this process started.
    assert {span["pid"] for span in worker_spans} == {worker_pid}
    assert worker_pid != os.getpid()
    for span in (parent, *children):
        assert span["name"] == "durable_execution.attempt"
        assert span["trace_id"] == f"{request_context.trace_id:032x}"
    assert parent["parent_span_id"] == f"{enqueue.context.span_id:016x}"
    assert {span["parent_span_id"] for span in children} == {parent["span_id"]}
