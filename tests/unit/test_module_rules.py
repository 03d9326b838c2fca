"""The layering rules of the source tree that a reader relies on, checked by parsing it.

* ``durable_execution.generated`` is imported only by ``storage/`` (and by itself);
* no hand-written module is over 600 lines (split it by job first).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "durable_execution"
GENERATED = SRC / "generated"
STORAGE = SRC / "storage"
MAX_LINES = 600


def _hand_written() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if GENERATED not in p.parents)


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_generated_code_is_imported_only_under_storage() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in _hand_written()
        if STORAGE not in path.parents
        and any(
            name == "durable_execution.generated" or name.startswith("durable_execution.generated.")
            for name in _imported_modules(path)
        )
    ]
    assert offenders == []


def test_no_hand_written_module_is_over_600_lines() -> None:
    sizes = {
        str(path.relative_to(SRC)): len(path.read_text().splitlines()) for path in _hand_written()
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
