"""``durable-execution dashboard``: what it refuses before serving anything."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from durable_execution import DurableExecutor, TaskContext, open_storage
from durable_execution.cli._dashboard import check_bind, is_loopback
from durable_execution.cli._main import cli


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["dashboard", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_other_binds_need_a_token(host: str, tmp_path: Path) -> None:
    code, output = invoke("--host", host, "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 1
    assert f"refusing to serve the dashboard on {host}" in output
    assert "--token" in output


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


def test_a_token_allows_any_bind_but_not_an_empty_one() -> None:
    check_bind("0.0.0.0", "long-random-token")
    with pytest.raises(Exception, match="--token is empty"):
        check_bind("0.0.0.0", " ")


def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now fails
    code, output = invoke("--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 1
    assert "pip install 'durable-execution[dashboard]'" in output


def test_a_missing_sqlite_file_is_an_error(tmp_path: Path) -> None:
    code, output = invoke("--db", f"sqlite:///{tmp_path / 'typo.db'}")
    assert code == 1
    assert "no SQLite database at" in output
    assert not (tmp_path / "typo.db").exists()


def test_serves_the_demo_table_without_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After `make demo` (table durable_demo), a plain `dashboard` serves that table."""
    import uvicorn

    db = f"sqlite:///{tmp_path / 'demo.db'}"
    asyncio.run(make_ready_in(db, "durable_demo"))
    served: list[uvicorn.Config] = []

    async def serve(self: uvicorn.Server) -> None:  # records instead of serving forever
        served.append(self.config)

    monkeypatch.setattr(uvicorn.Server, "serve", serve)
    code, output = invoke("--db", db, "--port", "8123")
    assert code == 0, output
    assert f"Dashboard for {db} (table durable_demo) on http://127.0.0.1:8123/" in output
    assert [(config.host, config.port) for config in served] == [("127.0.0.1", 8123)]


async def make_ready_in(db: str, table: str) -> None:
    async with open_storage(db, table_name=table) as storage:
        executor = DurableExecutor(storage)

        @executor.task(id="waits", timeout_ms=5_000)
        def waits(ctx: TaskContext, value: str) -> str:
            return value

        await executor.enqueue_task(waits, "input")


def test_listed_in_the_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "durable-execution dashboard" in result.output
    assert "dashboard  " in result.output  # in the commands list too
