"""Query docstrings: the `comments` sqlc sends, less a file comment that a blank line separates."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen.analyze import plan_package
from codegen.request import decode_request
from codegen.tests.conftest import capture_request, write_project

QUERIES = """\
-- About this whole file.

-- name: First :one
-- About the first query.
SELECT 1::int AS one;

-- name: Second :one
-- About the second query.
SELECT 2::int AS two;
"""


def test_a_files_opening_comment_stays_out_of_its_first_querys_docstring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sqlc collects every `--` line between the previous statement and the query's end
    # (internal/source StripComments) and drops blank lines, so the request cannot tell a
    # file-level comment from the first query's own; the plugin reads the file to tell.
    project = write_project(
        tmp_path / "project",
        "postgresql",
        schema="CREATE TABLE t (id bigint PRIMARY KEY);",
        queries=QUERIES,
    )
    work = tmp_path / "capture"
    work.mkdir()
    request = decode_request(capture_request(project, "postgresql", work))
    first, second = request.queries
    assert first.comments == (" About this whole file.", " About the first query.")
    assert second.comments == (" About the second query.",)
    monkeypatch.chdir(work)
    plans = plan_package(request).queries
    assert [plan.doc for plan in plans] == [
        ("About the first query.",),
        ("About the second query.",),
    ]
