"""Every generated query is used by the library, from exactly one place under ``storage/``.

One named query per purpose, used by one storage method: a query nobody calls is dead SQL that
still has to be kept correct, and a query called from two places has two purposes. The check
parses the source: each public method of a generated query class must appear as an attribute
call (``queries.<method>(``) exactly once across the hand-written modules of ``storage/``.

PostgreSQL has two query classes: ``AsyncQueries``, whose methods are counted in the async
storage's modules, and the synchronous ``Queries``, counted in the ``sync_*`` modules (the
``SyncClient``'s storage): every query marked ``-- @sync`` is called there exactly once, and no
other query is called synchronously. (SQLite has one, synchronous, class: both of its storages
run the same step functions, so each query is still called from one place.)
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

from durable_execution.generated import postgresql as pg
from durable_execution.generated import sqlite as lite

ROOT = Path(__file__).resolve().parents[2]
STORAGE = ROOT / "src" / "durable_execution" / "storage"
_MARKED = re.compile(r"^--\s*@sync\s*\n(?:--.*\n)*?--\s*name:\s*(\w+)", re.MULTILINE)


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


def _called_attributes(dialect: str, *, sync: bool | None = None) -> Counter[str]:
    """Attribute calls in the code of ``dialect``: its own modules (``sqlite.py``,
    ``_pg_rows.py``, …), and in shared modules the top-level functions and classes named for it
    (``migrate_sqlite``). ``sync`` (PostgreSQL): only the ``sync_*`` modules, or all but them."""
    calls: Counter[str] = Counter()
    for path in sorted(STORAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if sync is not None and path.stem.startswith("sync_") != sync:
            continue
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


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _marked_sync_methods() -> set[str]:
    """The PostgreSQL queries marked ``-- @sync`` (in the comment block over their name)."""
    return {
        _snake(name)
        for path in sorted((ROOT / "queries" / "postgresql").glob("*.sql"))
        for name in _MARKED.findall(path.read_text(encoding="utf-8"))
    }


@pytest.mark.parametrize(
    ("dialect", "queries_class", "sync"),
    [("postgresql", pg.AsyncQueries, False), ("sqlite", lite.Queries, None)],
)
def test_every_generated_query_is_used_once_under_storage(
    dialect: str, queries_class: type[object], sync: bool | None
) -> None:
    calls = _called_attributes(dialect, sync=sync)
    uses = {method: calls[method] for method in sorted(_methods(queries_class))}
    assert {method: n for method, n in uses.items() if n != 1} == {}


def test_postgres_sync_queries_are_the_marked_ones_each_used_once() -> None:
    marked = _marked_sync_methods()
    assert marked, "no query is marked -- @sync: the SyncClient uses some"
    assert marked == _methods(pg.Queries)  # the generator emitted them, and only them
    calls = _called_attributes("postgresql", sync=True)
    uses = {method: calls[method] for method in sorted(_methods(pg.AsyncQueries))}
    assert {method: n for method, n in uses.items() if n != (1 if method in marked else 0)} == {}
