"""Bad arguments get one clear line and a non-zero exit; passwords never reach the output."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._support import cli, sqlite_url

COMMANDS = ("demo", "worker", "migrate", "list", "show", "cancel", "stats")
SOME_ID = "te_" + "A" * 24


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command: str) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: durable-execution {command}" in result.stdout
    assert "--db URL" in result.stdout
    assert "sqlite:///relative/file.db" in result.stdout


def test_the_group_lists_every_command() -> None:
    result = cli("--help")
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert f"  {command} " in result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nonsense", "malformed storage URL 'nonsense': no scheme"),
        ("mysql://user@host/db", "unsupported storage URL scheme 'mysql'"),
        ("sqlite://relative.db", "a SQLite URL is sqlite:///relative/path.db"),
        ("postgresql://user:hunter2@host:port/db", "malformed storage URL"),
        ("memory://", "memory:// storage lives and dies inside one process"),
    ],
)
def test_a_bad_url_is_a_usage_error(url: str, message: str) -> None:
    result = cli("show", SOME_ID, "--db", url)
    assert result.returncode == 2
    assert "Error: Invalid value for '--db': " in result.stderr
    assert message in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = "postgresql://someone:hunter2@127.0.0.1:1/nowhere"
    for args in (("show", SOME_ID), ("cancel", SOME_ID), ("migrate",), ("list",), ("stats",)):
        result = cli(*args, "--db", url)
        assert result.returncode == 1
        assert "postgresql://someone:***@127.0.0.1:1/nowhere" in result.stderr
        assert "hunter2" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr


def test_a_missing_sqlite_file_is_not_created_by_reading(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    result = cli("show", SOME_ID, "--db", sqlite_url(path))
    assert result.returncode == 1
    assert f"Error: no SQLite database at {path}" in result.stderr
    assert not path.exists()


def test_a_missing_table_suggests_migrate(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "x.db")
    assert cli("migrate", "--db", db).returncode == 0
    result = cli("show", SOME_ID, "--db", db, "--table", "elsewhere")
    assert result.returncode == 1
    assert "no such table: elsewhere" in result.stderr
    assert f"Run: durable-execution migrate --db '{db}' --table elsewhere" in result.stderr


def test_a_bad_table_name_is_refused() -> None:
    result = cli("show", SOME_ID, "--table", "x; DROP TABLE y")
    assert result.returncode == 2
    assert "Invalid value for '--table': invalid table name" in result.stderr


def test_an_unknown_command_is_a_usage_error() -> None:
    result = cli("frobnicate")
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr
