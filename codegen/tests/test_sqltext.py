"""Token-level rewrites: table templating, SQLite placeholders, statement splitting."""

from __future__ import annotations

import sqlite3

import pytest

from codegen.errors import CodegenError
from codegen.sqltext import SliceHole, rewrite_sqlite, split_statements, template_sql
from codegen.tokenizer import POSTGRESQL, SQLITE, tokenize

TABLE = "durable_task_executions"


def template(text: str, dialect: str = POSTGRESQL) -> str:
    return template_sql(tokenize(text, dialect), TABLE)


def test_table_and_derived_identifiers_become_placeholders() -> None:
    text = (
        "CREATE INDEX ix_durable_task_executions_status ON durable_task_executions (status); "
        "INSERT INTO durable_task_executions_migrations "
        "SELECT * FROM public.durable_task_executions"
    )
    assert template(text) == (
        "CREATE INDEX ix_{table}_status ON {table} (status); "
        "INSERT INTO {table}_migrations "
        "SELECT * FROM public.{table}"
    )


def test_identifiers_inside_literals_and_comments_are_untouched() -> None:
    text = (
        "SELECT 'durable_task_executions', $q$durable_task_executions$q$ "
        "-- durable_task_executions\n/* durable_task_executions */ FROM durable_task_executions"
    )
    assert template(text) == (
        "SELECT 'durable_task_executions', $q$durable_task_executions$q$ "
        "-- durable_task_executions\n/* durable_task_executions */ FROM {table}"
    )


def test_only_whole_underscore_separated_components_match() -> None:
    text = (
        "durable_task_executions2, xdurable_task_executions, durable_task_executionsx, "
        "a_durable_task_executions_b"
    )
    assert template(text) == (
        "durable_task_executions2, xdurable_task_executions, durable_task_executionsx, a_{table}_b"
    )


def test_unquoted_names_fold_case_quoted_names_do_not() -> None:
    text = 'DURABLE_TASK_EXECUTIONS, "durable_task_executions_x", "Durable_Task_Executions"'
    assert template(text) == '{table}, "{table}_x", "Durable_Task_Executions"'


def test_other_braces_are_escaped_for_str_format() -> None:
    text = "SELECT '{a}' -- {b}\nFROM durable_task_executions WHERE j @> '{\"k\": 1}'"
    templated = template(text)
    assert templated.format(table="t") == text.replace("durable_task_executions", "t")


def rewrite(text: str, slices: dict[str, int] | None = None) -> tuple[str, ...]:
    return rewrite_sqlite(tokenize(text, SQLITE), TABLE, slices or {}).parts


def test_sqlite_numbered_and_repeated_parameters() -> None:
    assert rewrite("SELECT ?2, ?1, ?2") == ("SELECT :p2, :p1, :p2",)


def test_sqlite_bare_parameters_follow_sqlites_numbering_rule() -> None:
    # A bare ? is one more than the largest number so far (https://sqlite.org/lang_expr.html).
    assert rewrite("SELECT ?, ?, ?") == ("SELECT :p1, :p2, :p3",)
    assert rewrite("SELECT ?5, ?") == ("SELECT :p5, :p6",)


def test_sqlite_placeholders_in_literals_and_comments_are_untouched() -> None:
    text = "SELECT '?1', \"?\", [?2] -- ?3\n, /* ? */ ?1"
    assert rewrite(text) == ("SELECT '?1', \"?\", [?2] -- ?3\n, /* ? */ :p1",)


def test_sqlite_slices_before_and_after_numbered_parameters() -> None:
    # sqlc numbers slices after the other parameters, whatever their position in the text.
    text = (
        "a IN (/*SLICE:xs*/?) AND b = ?1 AND c IN (/*SLICE:ys*/?) AND d = ?2 "
        "AND e IN (/*SLICE:xs*/?)"
    )
    result = rewrite_sqlite(tokenize(text, SQLITE), TABLE, {"xs": 3, "ys": 4})
    assert result.parts == ("a IN (", ") AND b = :p1 AND c IN (", ") AND d = :p2 AND e IN (", ")")
    assert result.holes == (SliceHole(3, "xs"), SliceHole(4, "ys"), SliceHole(3, "xs"))
    assert result.numbers == {1, 2, 3, 4}


def test_sqlite_bare_parameters_around_a_slice_skip_its_number() -> None:
    # sqlc's text for `status = ? AND id IN (sqlc.slice('ids')) AND n > ?` numbers the bare
    # parameters 1 and 2 and the slice 3; a naive `?, ?, ?` expansion would bind wrongly.
    text = "status = ? AND id IN (/*SLICE:ids*/?) AND n > ?"
    result = rewrite_sqlite(tokenize(text, SQLITE), TABLE, {"ids": 3})
    assert result.parts == ("status = :p1 AND id IN (", ") AND n > :p2")


def test_sqlite_unknown_slice_is_an_error() -> None:
    with pytest.raises(CodegenError, match="no matching slice parameter"):
        rewrite("a IN (/*SLICE:nope*/?)")


def test_rewritten_sqlite_text_binds_by_name() -> None:
    # Executed by SQLite itself: repeated and out-of-order numbers bind the right values.
    (text,) = rewrite("SELECT ?2 || ?1 || ?2 || '?1' -- ?1\n")
    with sqlite3.connect(":memory:") as conn:
        assert conn.execute(text, {"p1": "a", "p2": "b"}).fetchone() == ("bab?1",)


def split(text: str, dialect: str) -> list[str]:
    return split_statements(tokenize(text, dialect), TABLE, dialect)


def test_split_statements_drops_comments_and_keeps_line_structure() -> None:
    text = """
    -- header comment
    CREATE TABLE durable_task_executions (  -- trailing
        id integer, /* inline */ name text
    );

    ;
    CREATE INDEX ix_durable_task_executions_name ON durable_task_executions (name)
    """
    assert split(text, SQLITE) == [
        "CREATE TABLE {table} (\n        id integer, name text\n    )",
        "CREATE INDEX ix_{table}_name ON {table} (name)",
    ]


def test_split_keeps_semicolons_in_literals_dollar_quotes_and_parentheses() -> None:
    text = (
        "COMMENT ON TABLE t IS 'a; b';\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n"
        "CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b);"
    )
    assert split(text, POSTGRESQL) == [
        "COMMENT ON TABLE t IS 'a; b'",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$",
        "CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b)",
    ]


def test_split_keeps_an_sqlite_trigger_body_together() -> None:
    text = (
        "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN\n"
        "  UPDATE t SET a = CASE WHEN 1 THEN 2 ELSE 3 END;\n"
        "  DELETE FROM u;\n"
        "END;\n"
        "CREATE TABLE v (x)"
    )
    statements = split(text, SQLITE)
    assert len(statements) == 2
    assert statements[0].endswith("DELETE FROM u;\nEND")
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE t (a)")
        conn.execute("CREATE TABLE u (b)")
        for statement in statements:
            conn.execute(statement.format(table=TABLE))
