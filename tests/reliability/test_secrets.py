"""Guarantee 8: passwords never leak, the default serializer never runs code, SQL is parameterised.

* A password in a database URL shows in no error (malformed URL, refused connection, missing
  database), no log record, no ``repr`` of a storage, and no CLI output (the CLI is run as a
  subprocess, as users run it, on failing and on working databases).
* The default serializer only builds the types it lists: a pickle, a tag naming a callable, or a
  library tag with extra fields does nothing but raise (a sentinel file proves nothing ran).
* Every SQL text in the generated modules is a constant; the only formatting applied to it is the
  ``{table}`` templating with a validated identifier, and every value travels as a parameter.
"""

from __future__ import annotations

import ast
import base64
import logging
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from psycopg.conninfo import make_conninfo

from durable_execution import JsonSerializer
from durable_execution.storage import StorageError, open_storage
from durable_execution.storage.postgres import PostgresDurableStorage

SECRET = "Sup3rSecret-b8"
REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "src" / "durable_execution" / "generated"
STORAGE = REPO / "src" / "durable_execution" / "storage"


def _with_password(url: str, password: str = SECRET) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}{port}"))


# --- errors, logs and repr --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://user:{SECRET}@127.0.0.1:1/x",  # nothing listens on port 1
        f"postgresql://postgres:{SECRET}@127.0.0.1:5432/no_such_database_b8",
        f"postgresql://user:{SECRET}@127.0.0.1:notaport/x",  # does not parse
        f"postgresql://user:{SECRET}@/x?host=127.0.0.1&port=1&password={SECRET}",
        f"postgres://user:{SECRET}@[::1/x",  # an unbalanced bracket
    ],
)
async def test_no_password_in_connection_errors_or_logs(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises((StorageError, ValueError)) as raised:
        async with open_storage(url):
            pass
    shown = f"{raised.value}\n{raised.value!r}\n{raised.value.__cause__!r}"
    assert SECRET not in shown
    assert "***" in str(raised.value) or "Cannot connect" in str(raised.value)
    assert SECRET not in caplog.text


# Connection strings whose password is written in every way a user may write it: libpq key/value
# strings (plain, quoted with spaces, malformed around it), and URLs whose password holds an
# unencoded "/", "#", "?" or "@" (URL parsers and libpq read those differently) or sits in a
# query parameter next to an unencoded "&". Nothing listens on port 1.
AWKWARD_CONNINFOS = [
    f"host=127.0.0.1 port=1 user=u password={SECRET} dbname=x",
    f"host=127.0.0.1 port=1 password='a {SECRET} b'",
    f"password = 'it\\'s {SECRET}' host=127.0.0.1 port=1",
    f"host=127.0.0.1 port=1 password=se {SECRET}",  # unquoted space: libpq refuses it
    f"host=127.0.0.1 port=1 password='{SECRET}",  # unterminated quote
    f"host=127.0.0.1 port=1 sslpassword={SECRET}",
    f"postgresql://user:pa/{SECRET}@127.0.0.1:1/x",
    f"postgresql://user:pa#{SECRET}@127.0.0.1:1/x",
    f"postgresql://user:pa?{SECRET}@127.0.0.1:1/x",
    f"postgresql://user:pa@{SECRET}@127.0.0.1:1/x",
    f"postgresql://user:{SECRET}@pa@127.0.0.1:1/x",
    f"postgresql://user@127.0.0.1:1/x?password={SECRET}",
    f"postgresql://user@127.0.0.1:1/x?password=a&{SECRET}",
    f"postgresql://user@127.0.0.1:1/x?sslmode=disable&password={SECRET}#frag",
]


@pytest.mark.parametrize("conninfo", AWKWARD_CONNINFOS)
async def test_no_password_however_written_in_errors_logs_or_repr(
    conninfo: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises((StorageError, ValueError)) as raised:
        async with open_storage(conninfo):
            pass
    shown = f"{raised.value}\n{raised.value!r}\n{raised.value.__cause__!r}"
    assert SECRET not in shown
    assert "***" in str(raised.value)  # the string is shown, its password masked
    for fragment in SECRET.split("-"):  # not even in part
        assert fragment not in shown
    assert SECRET not in caplog.text
    storage = PostgresDurableStorage(conninfo)
    assert SECRET not in repr(storage)
    assert "***" in repr(storage)


async def test_a_key_value_connection_string_is_accepted_and_masked(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    conninfo = make_conninfo(postgres_url, password=f"a {SECRET}")  # trust auth: unused
    assert "password='a " in conninfo
    async with open_storage(conninfo) as storage:
        assert isinstance(storage, PostgresDurableStorage)
        assert SECRET not in repr(storage)
        assert "password=***" in repr(storage)
        async with storage.transaction() as tx:
            assert await tx.get_task_executions(["te_none"]) == []
    assert SECRET not in caplog.text


async def test_no_password_in_storage_repr_or_errors_when_built_directly() -> None:
    storage = PostgresDurableStorage(f"postgresql://user:{SECRET}@127.0.0.1:1/x")
    assert SECRET not in repr(storage)
    assert SECRET not in str(storage)
    with pytest.raises(StorageError) as raised:
        await storage.open()
    assert SECRET not in str(raised.value)
    assert str(raised.value).startswith("Cannot connect to the PostgreSQL server: ")
    await storage.close()


async def test_no_password_in_repr_or_logs_of_a_working_storage(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with open_storage(_with_password(postgres_url)) as storage:  # trust auth: unused
        assert SECRET not in repr(storage)
        async with storage.transaction() as tx:
            assert SECRET not in repr(tx)
    assert SECRET not in caplog.text


# --- the CLI, as a subprocess -----------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("durable-execution", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "durable_execution.cli"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=60,
        # The worker imports its app (tests.cli.cli_app) from the repository.
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        cwd=REPO,
    )


CLI_COMMANDS = [
    ["migrate"],
    ["list"],
    ["stats"],
    ["show", "te_000000000000000000000000"],
    ["cancel", "te_000000000000000000000000"],
]


@pytest.mark.parametrize(
    "command", [*CLI_COMMANDS, ["worker", "tests.cli.cli_app:register"]], ids=lambda c: c[0]
)
def test_cli_never_prints_the_password_of_an_unreachable_database(command: list[str]) -> None:
    url = f"postgresql://user:{SECRET}@127.0.0.1:1/x"
    for result in (
        _cli(*command, "--db", url),
        _cli(*command, env={"DURABLE_EXECUTION_DB": url}),
    ):
        assert result.returncode != 0
        assert "Cannot connect to postgresql://user:***@127.0.0.1:1/x" in result.stderr
        assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("conninfo", AWKWARD_CONNINFOS)
def test_cli_never_prints_a_password_however_written(conninfo: str) -> None:
    for result in (
        _cli("list", "--db", conninfo),
        _cli("stats", env={"DURABLE_EXECUTION_DB": conninfo}),
    ):
        assert result.returncode != 0
        output = result.stdout + result.stderr
        assert "***" in output  # it names the database, password masked
        for fragment in SECRET.split("-"):
            assert fragment not in output


def test_worker_log_lines_never_show_the_password_of_a_key_value_string(
    postgres_url: str,
) -> None:
    conninfo = make_conninfo(postgres_url, password=f"a {SECRET}")  # trust auth: unused
    executable = shutil.which("durable-execution", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "durable_execution.cli"]
    worker = subprocess.Popen(
        [*command, "worker", "tests.cli.cli_app:register", "--db", conninfo],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    lines: list[str] = []
    try:
        assert worker.stdout is not None
        for line in worker.stdout:  # bounded: the worker either starts or exits
            lines.append(line)
            if "Worker started" in line:
                break
        worker.send_signal(signal.SIGTERM)
        rest, _ = worker.communicate(timeout=60)
        lines.append(rest)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    output = "".join(lines)
    assert "Worker started" in output, output
    assert "password=***" in output
    assert SECRET not in output


def test_cli_never_prints_the_password_of_a_working_database(postgres_url: str) -> None:
    url = _with_password(postgres_url)
    outputs = [_cli(*command, "--db", url) for command in CLI_COMMANDS]
    for result in outputs[:3]:  # migrate, list and stats work
        assert result.returncode == 0, result.stderr
    for result in outputs:
        assert SECRET not in result.stdout + result.stderr


# --- the default serializer runs no code ------------------------------------------------------


class _Boom:
    """Unpickling this would create the sentinel file."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.sentinel}",))


def test_the_default_serializer_never_executes_code(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    pickled = pickle.dumps(_Boom(sentinel))
    serializer = JsonSerializer()
    hostile = [
        pickled.decode("latin-1"),  # a raw pickle, as text
        base64.b64encode(pickled).decode(),  # a base64 pickle is just a string
        '{"$de": "pickle", "v": "' + base64.b64encode(pickled).decode() + '"}',
        '{"$de": "os.system", "v": "touch ' + str(sentinel) + '"}',
        '{"$de": "_Boom", "v": {}}',
        '{"$de": "TaskRef", "v": {"task_id": "a", "execution_id": "b", "__class__": "x"}}',
        '{"$de": "eval", "v": "__import__(\'os\').system(\'touch ' + str(sentinel) + "')\"}",
        '{"py/object": "os.system", "py/reduce": [{"py/function": "os.system"}]}',
        '{"__reduce__": ["os.system", ["touch ' + str(sentinel) + '"]]}',
    ]
    outcomes = []
    for text in hostile:
        try:
            outcomes.append(type(serializer.deserialize(text)).__name__)
        except (ValueError, TypeError) as error:
            outcomes.append(type(error).__name__)
    assert not sentinel.exists()
    # Plain data (strings, dicts) or a refusal; never an object of a type outside the list.
    assert set(outcomes) <= {"str", "dict", "ValueError", "TypeError", "JSONDecodeError"}, outcomes
    tagged_bytes = serializer.deserialize(serializer.serialize(pickled))
    assert tagged_bytes == pickled  # bytes come back as bytes, never unpickled
    assert not sentinel.exists()


def test_the_serializer_imports_nothing_that_can_run_code() -> None:
    source = (REPO / "src" / "durable_execution" / "serializer.py").read_text()
    tree = ast.parse(source)
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(name=node.module or "")]
        )
    }
    assert not imported & {"pickle", "marshal", "shelve", "dill", "cloudpickle", "importlib"}
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__"}


# --- all SQL is parameterised -----------------------------------------------------------------

# Formatting the generated code may do, by function: placeholder *names* for an expanded list
# (values are bound), the {table} templating, and the table-name check's error message.
_ALLOWED_FSTRINGS = {"_expand_slices", "validate_table_name"}
_SLICE_HOLE = re.compile(r"\{p[0-9]+\}")  # a sqlc.slice list (SQLite), see _expand_slices


def _enclosing_functions(tree: ast.AST) -> dict[ast.AST, str]:
    owner: dict[ast.AST, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # ast.walk is breadth-first: a nested function overwrites its outer one's name.
            for inner in ast.walk(node):
                if inner is not node:
                    owner[inner] = node.name
    return owner


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    owner = _enclosing_functions(tree)
    problems: list[str] = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.JoinedStr) and owner.get(node) not in _ALLOWED_FSTRINGS:
            problems.append(f"{where}: f-string in {owner.get(node, 'module scope')}")
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant)
            and isinstance(node.left.value, str)
        ):
            problems.append(f"{where}: %-formatting")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
        ):
            keywords = [keyword.arg for keyword in node.keywords]
            # _expand_slices also fills the {pN} holes of sqlc.slice lists, with the names of
            # bound parameters it makes itself (`:p2_0, :p2_1`) or NULL: never a value.
            slices = owner.get(node) == "_expand_slices" and keywords == ["table", None]
            if node.args or (keywords != ["table"] and not slices):
                problems.append(f"{where}: .format() other than format(table=...)")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if ("SELECT" in text or "UPDATE" in text or "INSERT" in text) and "{" in text:
                stripped = _SLICE_HOLE.sub("", text.replace("{table}", ""))
                if "{" in stripped or "}" in stripped:
                    problems.append(f"{where}: a placeholder other than {{table}} in SQL")
    return problems


def test_generated_sql_is_parameterised() -> None:
    modules = sorted(GENERATED.rglob("*.py"))
    assert len(modules) >= 8
    problems = [problem for module in modules for problem in _problems(module)]
    assert problems == []


def test_hand_written_storage_executes_only_constant_or_generated_sql() -> None:
    problems: list[str] = []
    for path in sorted(STORAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "executemany", "executescript")
                and node.args
            ):
                continue
            statement = node.args[0]
            # A literal, or a name bound to a generated statement: never built from values.
            if isinstance(statement, ast.Constant | ast.Name | ast.Attribute):
                continue
            if _is_quoted_identifier_composition(statement):
                continue
            problems.append(f"{path.name}:{node.lineno}: {ast.unparse(statement)}")
    assert problems == []


def _is_quoted_identifier_composition(node: ast.expr) -> bool:
    """``sql.SQL("<constant>").format(sql.Identifier(...), ...)``: psycopg quotes each identifier,
    so no value can change the statement (LISTEN takes its channel only as an identifier)."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and not node.keywords
    ):
        return False
    template = node.func.value
    if not (
        isinstance(template, ast.Call)
        and ast.unparse(template.func) == "sql.SQL"
        and len(template.args) == 1
        and isinstance(template.args[0], ast.Constant)
    ):
        return False
    return all(
        isinstance(arg, ast.Call) and ast.unparse(arg.func) == "sql.Identifier" for arg in node.args
    )
