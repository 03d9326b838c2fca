"""``durable-execution dashboard``: what it refuses before serving anything."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from durable_execution.cli import main
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


def test_listed_in_the_help() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
