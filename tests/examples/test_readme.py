"""The README's quickstart is real code: it runs and prints what the README says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
