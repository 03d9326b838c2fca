"""The source printer: literals mean what they say, and ruff leaves the printed code alone."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from codegen.pysource import (
    INDENT,
    LINE_LIMIT,
    Imports,
    bracketed,
    docstring,
    return_call,
    return_list_comprehension,
    string_assignment,
    string_literal,
    string_tuple,
)
from codegen.regenerate import REPO_ROOT
from codegen.typemap import Import


@given(st.text())
def test_string_literal_round_trips(text: str) -> None:
    assert eval(string_literal(text)) == text


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_string_assignment_round_trips_and_fits(text: str) -> None:
    source = "\n".join(string_assignment("NAME", text))
    namespace: dict[str, object] = {}
    exec(source, namespace)
    assert namespace["NAME"] == text
    assert all(len(line) <= LINE_LIMIT for line in source.splitlines())


_WORDS = ["SELECT", "id", "'it''s'", '"Quoted"', "\\", "\t", "é", "{table}", "$1", ":p1", "--"]


def _random_sql(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randint(1, 60)):
        piece = rng.choice([*_WORDS, "x" * rng.randint(1, 120)])
        pieces.append(piece + rng.choice([" ", " ", "\n", ", ", ""]))
    return "".join(pieces)


def _random_name(rng: random.Random, longest: int) -> str:
    return "n" + "_".join("abcdefgh"[: rng.randint(1, 8)] for _ in range(longest // 6))[:longest]


def test_ruff_leaves_printed_code_unchanged(tmp_path: Path) -> None:
    """Many randomly sized constructs in one file; `ruff format --check` must accept all."""
    rng = random.Random(20240501)
    blocks: list[list[str]] = []
    expected: dict[str, str] = {}
    for i in range(150):
        text = _random_sql(rng)
        name = f"SQL_{i}"
        expected[name] = text
        blocks.append(string_assignment(name, text))
        parts = [_random_sql(rng) for _ in range(rng.randint(1, 3))]
        expected[f"PARTS_{i}"] = "\x00".join(parts)
        blocks.append(string_tuple("", f"PARTS_{i} = (", parts, ")"))
    # Random lengths, plus every length around the points where a construct changes shape.
    lengths = [rng.randint(5, 75) for _ in range(40)] + list(range(60, 85))
    for i, length in enumerate(lengths):
        function = "f" * length
        items = [_random_name(rng, rng.randint(1, 40)) for _ in range(rng.randint(1, 4))]
        body = bracketed(INDENT, f"x = {function}(", items, ")")
        body += bracketed(INDENT, "args = (", items, ")", is_tuple=True)
        body += bracketed(INDENT, "d = {", [f'"{n}": {n}' for n in items], "}")
        body += [f"{INDENT}if x:", *return_call(INDENT * 2, function, "x")]
        body += return_list_comprehension(INDENT, f"{function}(row)", "for row in rows")
        blocks.append([f"def f_{i}(rows):", *body])
    lines = ["Lorem ipsum dolor sit amet, " * rng.randint(0, 6), "", "- a list item", '"quoted"']
    blocks.append(["def documented():", *docstring(lines, INDENT), f"{INDENT}pass"])
    blocks.append(["def short():", *docstring(['say "hi"'], INDENT), f"{INDENT}pass"])
    # One-line texts of every length around where the closing quotes stop fitting (a method's).
    for n in range(80, 96):
        text = ("lorem ipsum " * 10)[:n].rstrip() + "."
        method = ["    def m(self):", *docstring([text], INDENT * 2), f"{INDENT * 2}pass"]
        blocks.append([f"class OneLine{n}:", *method])
    imports = Imports()
    imports.add(Import("datetime"), Import("psycopg"), Import("psycopg.rows", "tuple_row"))
    imports.add_from(".models", *(f"Row{_random_name(rng, 12).title()}" for _ in range(12)))
    imports.add_from("._table", "DEFAULT_TABLE", "validate_table_name")
    imports.add_from("collections.abc", "Sequence")
    # One blank line after imports when constants follow (ruff's isort).
    source = "\n".join(imports.lines()) + "\n\n" + "\n\n\n".join("\n".join(b) for b in blocks)
    path = tmp_path / "printed.py"
    path.write_text(source + "\n")

    too_long = [line for line in source.splitlines() if len(line) > LINE_LIMIT]
    assert not too_long
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--diff", "--no-cache", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[:5000]
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "I,E501", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[:5000]

    namespace: dict[str, object] = {}
    exec(_strings_only(source), namespace)
    for name, text in expected.items():
        value = namespace[name]
        joined = "\x00".join(value) if isinstance(value, tuple) else value
        assert joined == text, name


def _strings_only(source: str) -> str:
    """The module's string constants alone (its imports and functions need not run)."""
    keep: list[str] = []
    taking = False
    for line in source.splitlines():
        if line.startswith(("SQL_", "PARTS_")):
            taking = True
        elif line and not line.startswith((" ", ")")):
            taking = False
        if taking:
            keep.append(line)
    return "\n".join(keep)
