"""Every generated query is used by the library, from exactly one place under ``storage/``.

One named query per purpose, used by one storage method: a query nobody calls is dead SQL that
still has to be kept correct, and a query called from two places has two purposes. The check
parses the source: each public method of a generated query class must appear as an attribute
call (``queries.<method>(``) exactly once across the hand-written modules of ``storage/``.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from durable_execution.generated import postgresql as pg
from durable_execution.generated import sqlite as lite

STORAGE = Path(__file__).resolve().parents[2] / "src" / "durable_execution" / "storage"


def _dialect(name: str) -> str | None:
    if "sqlite" in name:
        return "sqlite"
    if "pg" in name or "postgres" in name:
        return "postgresql"
    return None


def _count_uses(node: ast.AST, calls: Counter[str]) -> None:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
            calls[inner.func.attr] += 1
        # A method chosen rather than called at once (``step = q.a if lock else q.b``) too.
        elif isinstance(inner, ast.IfExp):
            for branch in (inner.body, inner.orelse):
                if isinstance(branch, ast.Attribute):
                    calls[branch.attr] += 1


def _called_attributes(dialect: str) -> Counter[str]:
    """Attribute calls in the code of ``dialect``: its own modules (``sqlite.py``,
    ``_pg_rows.py``, …), and in shared modules the top-level functions and classes named for it
    (``migrate_sqlite``)."""
    calls: Counter[str] = Counter()
    for path in sorted(STORAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if _dialect(path.stem) is not None:
            if _dialect(path.stem) == dialect:
                _count_uses(tree, calls)
            continue
        for node in tree.body:
            name = getattr(node, "name", "")
            if isinstance(name, str) and _dialect(name.lower()) == dialect:
                _count_uses(node, calls)
    return calls


def _methods(cls: type[object]) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


@pytest.mark.parametrize(
    ("dialect", "queries_class"),
    [("postgresql", pg.AsyncQueries), ("sqlite", lite.Queries)],
)
def test_every_generated_query_is_used_once_under_storage(
    dialect: str, queries_class: type[object]
) -> None:
    calls = _called_attributes(dialect)
    uses = {method: calls[method] for method in sorted(_methods(queries_class))}
    assert {method: n for method, n in uses.items() if n != 1} == {}
