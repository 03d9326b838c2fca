"""The README's quickstart is real code: it runs and prints what the README says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from mypy import api as mypy_api

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_code() -> str:
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the Quickstart section has no python block"
    return match.group(1)


def test_readme_quickstart_runs(tmp_path: Path) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart_code())
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    assert (tmp_path / "quickstart.db").exists()


def test_readme_quickstart_is_short() -> None:
    lines = [line for line in quickstart_code().splitlines() if line.strip()]
    assert len(lines) <= 20, len(lines)


# A block may be preceded by `<!-- mypy prelude … -->`: its lines come first, and when the last
# one opens a block (ends with ":"), the README block is indented under it. A block whose first
# line is `# path/to/module.py` is written there, so that later blocks can import it.
_BLOCK = re.compile(
    r"(?:<!-- mypy prelude[^\n]*\n(?P<prelude>.*?)-->\n)?```python\n(?P<code>.*?)```", re.DOTALL
)
_MODULE_PATH = re.compile(r"#\s*(?P<path>[\w/]+\.py)\n")


def readme_modules(text: str) -> dict[str, str]:
    """Every python block of ``text`` as a module to type-check: relative path -> source."""
    modules: dict[str, str] = {}
    for index, match in enumerate(_BLOCK.finditer(text)):
        code, prelude = match["code"], match["prelude"] or ""
        named = _MODULE_PATH.match(code)
        if prelude.rstrip().endswith(":"):
            code = "".join(
                f"    {line}" if line.strip() else line for line in code.splitlines(True)
            )
        path = named["path"] if named else f"readme_block_{index}.py"
        modules[path] = prelude + code
    return modules


def mypy_errors(modules: dict[str, str], root: Path) -> list[str]:
    paths = []
    for relative, source in modules.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        for package in path.relative_to(root).parents:
            if str(package) != ".":
                (root / package / "__init__.py").touch()
        path.write_text(source)
        paths.append(str(path))
    options = ["--strict", "--no-error-summary", "--python-version", "3.11"]
    cache = ["--cache-dir", str(root / ".mypy_cache")]
    stdout, stderr, _status = mypy_api.run([*options, *cache, *paths])
    assert stderr == "", stderr
    return stdout.splitlines()


def test_every_readme_python_block_passes_mypy_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    modules = readme_modules(README.read_text())
    assert len(modules) == README.read_text().count("```python")
    assert mypy_errors(modules, tmp_path) == []


def test_a_type_error_in_a_readme_block_fails_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check can fail: a fragment (checked inside its prelude) with a wrong input type."""
    monkeypatch.chdir(tmp_path)
    broken = README.read_text().replace(
        'await executor.enqueue_task(send_welcome, "ada@example.com")',
        "await executor.enqueue_task(send_welcome, 42)",
    )
    assert broken != README.read_text()
    errors = mypy_errors(readme_modules(broken), tmp_path)
    assert any("enqueue_task" in line and "error:" in line for line in errors), errors
