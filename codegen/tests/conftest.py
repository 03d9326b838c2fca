"""Shared helpers: small sqlc projects in temporary directories, captured requests, databases."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from codegen.regenerate import REPO_ROOT, run_sqlc

FIXTURES = Path(__file__).parent / "fixtures"
ENGINES = {"postgresql": "psycopg", "sqlite": "sqlite3"}

_CONFIG = """\
version: "2"
plugins:
  - name: py
    env: [DURABLE_CODEGEN_PYTHON]
    process:
      cmd: {cmd}
      format: json
sql:
  - engine: {engine}
    schema: schema/{engine}
    queries: queries/{engine}
    codegen:
      - plugin: py
        out: out/{engine}
        options:
          target: {target}
          table: {table}
"""

# Saves the request instead of generating: lets tests feed real sqlc requests to the plugin's
# functions in-process. `{}` is a valid, empty response.
_CAPTURE = """\
#!/bin/sh
exec "$DURABLE_CODEGEN_PYTHON" -c '
import sys
with open(sys.argv[1], "wb") as f:
    f.write(sys.stdin.buffer.read())
sys.stdout.write("{{}}")
' "{path}"
"""


def write_project(
    root: Path,
    engine: str,
    *,
    schema: str,
    queries: str,
    table: str = "durable_task_executions",
    target: str | None = None,
    cmd: str = "./codegen/sqlc-plugin",
) -> Path:
    """A one-dialect sqlc project under ``root``; the plugin writes to ``out/<engine>``."""
    (root / "schema" / engine).mkdir(parents=True)
    (root / "queries" / engine).mkdir(parents=True)
    (root / "schema" / engine / "0001_schema.sql").write_text(schema)
    (root / "queries" / engine / "queries.sql").write_text(queries)
    config = _CONFIG.format(cmd=cmd, engine=engine, target=target or ENGINES[engine], table=table)
    (root / "sqlc.yaml").write_text(config)
    return root


def capture_request(project: Path, engine: str, work: Path) -> bytes:
    """The request sqlc sends for ``engine`` of ``project`` (a dir with schema/ and queries/).

    The project is copied into ``work``, which then serves as the working directory of the
    in-process tests (the plugin reads schema files relative to it).
    """
    for name in ("schema", "queries"):
        shutil.copytree(project / name / engine, work / name / engine)
    captured = work / f"request-{engine}.json"
    script = work / "capture.sh"
    script.write_text(_CAPTURE.format(path=captured))
    script.chmod(0o755)
    config = _CONFIG.format(
        cmd=script, engine=engine, target=ENGINES[engine], table="durable_task_executions"
    )
    (work / "sqlc.yaml").write_text(config)
    run_sqlc(["generate"], work)
    return captured.read_bytes()


@pytest.fixture(scope="session")
def fixture_requests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    """Engine -> (working directory, captured request) for the fixture project."""
    out = {}
    for engine in ENGINES:
        work = tmp_path_factory.mktemp(f"fixture-{engine}")
        out[engine] = (work, capture_request(FIXTURES, engine, work))
    return out


@pytest.fixture(scope="session")
def real_requests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    """Engine -> (working directory, captured request) for the project's own schema/queries."""
    out = {}
    for engine in ENGINES:
        work = tmp_path_factory.mktemp(f"real-{engine}")
        out[engine] = (work, capture_request(REPO_ROOT, engine, work))
    return out


def admin_url() -> str:
    return os.environ.get(
        "DURABLE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"codegen_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_url(), dbname=name)
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
