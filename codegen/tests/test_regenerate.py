"""``python -m codegen.regenerate``: rewrites the output wholesale; ``--check`` catches drift."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.regenerate import REPO_ROOT, main, read_tree
from codegen.tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def generated_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixture project with its output generated into golden/ (once)."""
    root = tmp_path_factory.mktemp("generated") / "project"
    root.mkdir()
    for name in ("sqlc.yaml", "schema", "queries"):
        source = FIXTURES / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy(source, root / name)
    assert main(["--project", str(root), "--out", "golden"]) == 0
    return root


@pytest.fixture
def project(generated_project: Path, tmp_path: Path) -> Path:
    """A private copy of the generated project, free to damage."""
    return Path(shutil.copytree(generated_project, tmp_path / "project", symlinks=True))


REGENERATE = (sys.executable, "-m", "codegen.regenerate")


def check(project: Path) -> int:
    return main(["--project", str(project), "--out", "golden", "--check"])


def test_fresh_output_passes_the_check(project: Path) -> None:
    result = subprocess.run(
        [*REGENERATE, "--check", "--project", str(project), "--out", "golden"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "golden is up to date (11 files)" in result.stdout


def test_edited_missing_and_stale_files_fail_the_check(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = project / "golden" / "sqlite" / "models.py"
    models.write_text(models.read_text().replace("    status: str\n", "    status: int\n", 1))
    (project / "golden" / "postgresql" / "migrations.py").unlink()
    (project / "golden" / "sqlite" / "old_queries.py").write_text("# stale\n")
    assert check(project) == 1
    err = capsys.readouterr().err
    assert "differs: sqlite/models.py" in err
    assert "-    status: int" in err
    assert "+    status: str" in err
    assert "missing: postgresql/migrations.py" in err
    assert "extra (stale?): sqlite/old_queries.py" in err


def test_a_query_change_makes_the_output_stale(project: Path) -> None:
    queries = project / "queries" / "sqlite" / "tasks.sql"
    added = "\n-- name: CountAll :one\nSELECT count(*) AS n FROM durable_task_executions;\n"
    queries.write_text(queries.read_text() + added)
    assert check(project) == 1


def test_regenerate_replaces_the_directory_wholesale(project: Path) -> None:
    expected = read_tree(project / "golden")
    stale = project / "golden" / "sqlite" / "old_queries.py"
    stale.write_text("# stale\n")
    assert main(["--project", str(project), "--out", "golden"]) == 0
    assert not stale.exists()
    assert read_tree(project / "golden") == expected


def test_sqlc_failure_leaves_the_output_alone(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = read_tree(project / "golden")
    queries = project / "queries" / "sqlite" / "tasks.sql"
    queries.write_text(queries.read_text() + "\n-- name: Broken :many\nSELECT nope FROM nowhere;\n")
    assert main(["--project", str(project), "--out", "golden"]) == 1
    assert "sqlc generate failed" in capsys.readouterr().err
    assert read_tree(project / "golden") == before
