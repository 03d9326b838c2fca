"""What one execution reports to another: the parent-error helper and record construction."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from durable_execution import clock
from durable_execution._options import ExecutionOptions
from durable_execution._records import (
    descendant_links,
    new_record,
    parent_error,
    parent_failed_error,
)
from durable_execution.model import (
    ChildTaskError,
    ExecutionErrorInfo,
    ParentTaskRef,
    RetryOptions,
    TaskRef,
)

NOW = clock.now()
OPTIONS = ExecutionOptions(
    retry_options=RetryOptions(max_attempts=1), sleep_ms_before_run=250, timeout_ms=1000
)
BASE = new_record(task_id="parent", execution_id="te_p", options=OPTIONS, run_input="1", now=NOW)


def _error(message: str) -> ExecutionErrorInfo:
    return ExecutionErrorInfo(error_type="generic", message=message, is_retryable=True)


def test_new_record_is_ready_and_sleeps_before_its_start() -> None:
    assert BASE.status == "ready"
    assert BASE.start_at == NOW + timedelta(milliseconds=250)
    assert BASE.created_at == BASE.updated_at == NOW
    assert (BASE.version, BASE.retry_attempts, BASE.is_closed) == (0, 0, False)
    assert BASE.root_task is None
    assert BASE.parent_task is None


def test_descendants_point_at_the_root_of_the_tree() -> None:
    root, parent = descendant_links(BASE, finalize=False)
    assert root == TaskRef(task_id="parent", execution_id="te_p")
    assert parent == ParentTaskRef(task_id="parent", execution_id="te_p", is_finalize_task=False)
    child = replace(BASE, execution_id="te_c", task_id="child", root_task=root, parent_task=parent)
    root2, parent2 = descendant_links(child, finalize=True)
    assert root2 == root
    assert parent2 == ParentTaskRef(task_id="child", execution_id="te_c", is_finalize_task=True)


def test_parent_error_prefers_the_own_error() -> None:
    own = replace(_error("own"), exception_type="KeyError", traceback="Traceback ...\n")
    reported = parent_error(replace(BASE, error=own, finalize_task_error=_error("x")))
    # The type is kept; the traceback stays on the child's own row only.
    assert reported == replace(own, traceback=None)


def test_parent_error_of_a_failed_finalize() -> None:
    failed = replace(
        BASE,
        finalize_task=TaskRef(task_id="fin", execution_id="te_f"),
        finalize_task_error=_error("finalize broke"),
    )
    error = parent_error(failed)
    assert error.message == "Finalize task with id fin failed: finalize broke"
    assert (error.error_type, error.is_retryable) == ("generic", False)


def test_parent_error_of_failed_children() -> None:
    failed = replace(
        BASE,
        children_tasks_errors=(
            ChildTaskError(index=0, task_id="c1", execution_id="te_1", error=_error("one")),
            ChildTaskError(index=1, task_id="c2", execution_id="te_2", error=_error("two")),
        ),
    )
    assert parent_error(failed).message == (
        "Children task errors:\n"
        "  Child task with id c1 failed: one\n"
        "  Child task with id c2 failed: two"
    )


def test_parent_error_fallback_and_cancellation_message() -> None:
    assert parent_error(BASE).message == "Unknown error"
    cancelled = parent_failed_error(replace(BASE, error=_error("boom")))
    assert cancelled.message == "Parent task parent with execution id te_p failed: boom"
    assert (cancelled.error_type, cancelled.is_retryable) == ("cancelled", False)
