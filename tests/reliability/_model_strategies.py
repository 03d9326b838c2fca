"""Hypothesis strategies for the storage contract: records, guarded updates, the arguments of
the purpose-named reads and writes.

The domains are deliberately small (eight execution ids, a few milliseconds of time, versions 0-3)
so that random filters, version guards and duplicate ids hit existing rows often. Every value is
inside what all three backends can represent (stated per strategy), because the model-based test
is about the backends *agreeing*, not about which out-of-range values each one refuses.

Records and updates are built field by field from a table of strategies that must name every
field of the dataclass: when the contract grows a field, :func:`check_field_coverage` fails
instead of the new field silently never being exercised.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, TypeVar

from hypothesis import strategies as st

from durable_execution.model import (
    ALL_STATUSES,
    ERROR_TYPES,
    ChildTaskError,
    ExecutionErrorInfo,
    ParentTaskRef,
    RetryOptions,
    TaskExecutionStatus,
    TaskRef,
)
from durable_execution.storage import (
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

_T = TypeVar("_T")

IDS: Final = tuple(f"te_{n}" for n in range(8))

# A fixed instant with a millisecond part, so that a lost millisecond would show.
T0: Final = datetime(2025, 3, 4, 5, 6, 7, 891_000, tzinfo=UTC)
_ZONES: Final = (UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30)))

# PostgreSQL `integer` columns (counts, attempts) and `bigint` ones (versions, durations).
_INT32_MAX: Final = 2**31 - 1
_INT64_MAX: Final = 2**63 - 1


def _optional(strategy: st.SearchStrategy[_T]) -> st.SearchStrategy[_T | None]:
    return st.none() | strategy


def _rarely_empty(lists: st.SearchStrategy[list[_T]]) -> st.SearchStrategy[list[_T]]:
    """``lists`` (never empty), or one time in five ``[]``: an empty filter list matches nothing,
    which must hold everywhere, but a test that mostly matches nothing proves little."""
    return st.one_of(lists, lists, lists, lists, st.just([]))


# --- scalars --------------------------------------------------------------------------------


def _instant(offset_ms: st.SearchStrategy[int]) -> st.SearchStrategy[datetime]:
    """``T0 + offset`` in one of a few time zones: the same instant must compare equal anywhere."""
    return st.builds(
        lambda ms, zone: (T0 + timedelta(milliseconds=ms)).astimezone(zone),
        offset_ms,
        st.sampled_from(_ZONES),
    )


# Stored timestamps: whole milliseconds (what every backend stores exactly; see clock.py).
# (`sampled_from`, not `integers`: the latter favours the bounds, so times and bounds would meet
# at the same few values and `<` would rarely hold.)
stored_times: Final = _instant(st.sampled_from(range(6)))

# Filter bounds may fall between two milliseconds: `stored < bound` must mean the same everywhere.
bounds: Final = st.builds(
    lambda moment, micros: moment + timedelta(microseconds=micros),
    _instant(st.sampled_from(range(-1, 8))),
    st.sampled_from((0, 0, 1, 500, 999)),
)

_COMMON_STATUSES: Final[tuple[TaskExecutionStatus, ...]] = ("ready", "running")
# Mostly two statuses, so that status filters hit; sometimes any of them.
statuses: Final[st.SearchStrategy[TaskExecutionStatus]] = st.sampled_from(
    _COMMON_STATUSES
) | st.sampled_from(ALL_STATUSES)

# Mostly non-empty (an empty list matches nothing, which is checked, but rarely interesting).
status_lists: Final = _rarely_empty(
    st.lists(statuses, min_size=1, max_size=3) | st.just(list(_COMMON_STATUSES))
)

# Payloads are opaque text. No NUL and no lone surrogates: PostgreSQL text cannot hold the first,
# UTF-8 cannot encode the second (both are refused by the SQL backends, accepted in memory).
texts: Final = st.text(alphabet="ab\"\\'\n é✓{}[]", max_size=6)

small_ints: Final = st.integers(0, 3)
int32s: Final = small_ints | st.sampled_from((_INT32_MAX, -_INT32_MAX - 1))
int64s: Final = small_ints | st.sampled_from((_INT64_MAX, -_INT64_MAX - 1))
versions: Final = small_ints
# Mostly a few close values, so that claims mix priorities and FIFO ties; sometimes the bounds
# the executor accepts (PostgreSQL `integer`).
priorities: Final = st.sampled_from((-1, 0, 0, 1)) | st.sampled_from((_INT32_MAX, -_INT32_MAX - 1))
KEYS: Final = ("k0", "k1 é✓")

# Finite floats only: JSON has no NaN/Infinity, and the storages refuse them.
_multipliers: Final = st.sampled_from((1.0, 1.5, 2)) | st.floats(
    min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False
)

retry_options: Final = st.builds(
    RetryOptions,
    max_attempts=int32s,
    base_delay_ms=int64s,
    delay_multiplier=_multipliers,
    max_delay_ms=_optional(int64s),
)

task_refs: Final = st.builds(TaskRef, task_id=st.sampled_from(("t", "u")), execution_id=texts)
parent_refs: Final = st.builds(
    ParentTaskRef,
    task_id=st.sampled_from(("t", "u")),
    execution_id=texts,
    is_finalize_task=st.booleans(),
)
errors: Final = st.builds(
    ExecutionErrorInfo,
    error_type=st.sampled_from(ERROR_TYPES),
    message=texts,
    is_retryable=st.booleans(),
    is_internal=st.booleans(),
)
child_errors: Final = st.builds(
    ChildTaskError,
    index=int32s,
    task_id=st.sampled_from(("t", "u")),
    execution_id=texts,
    error=errors,
)
# An empty tuple is a value (not "absent"), so it is generated too.
task_ref_tuples: Final = st.lists(task_refs, max_size=2).map(tuple)
child_error_tuples: Final = st.lists(child_errors, max_size=2).map(tuple)


# --- records and updates --------------------------------------------------------------------

_RECORD_FIELDS: Final[dict[str, st.SearchStrategy[object]]] = {
    "task_id": st.sampled_from(("t", "u")),
    "execution_id": st.sampled_from(IDS),
    "retry_options": retry_options,
    "sleep_ms_before_run": int64s,
    "timeout_ms": int64s,
    "run_input": texts,
    "status": statuses,
    "start_at": stored_times,
    "created_at": stored_times,
    "updated_at": stored_times,
    "root_task": _optional(task_refs),
    "parent_task": _optional(parent_refs),
    "run_output": _optional(texts),
    "output": _optional(texts),
    "children_tasks_completed_count": int32s,
    "children_tasks": _optional(task_ref_tuples),
    "children_tasks_errors": _optional(child_error_tuples),
    "finalize_task": _optional(task_refs),
    "finalize_task_error": _optional(errors),
    "error": _optional(errors),
    "is_closed": st.booleans(),
    "needs_promise_cancellation": st.booleans(),
    "retry_attempts": int32s,
    "lease_expiries": int32s,
    "started_at": _optional(stored_times),
    "finished_at": _optional(stored_times),
    "expires_at": _optional(stored_times),
    "version": versions,
    "rerun_of": _optional(st.sampled_from(IDS)),
    "trace_context": _optional(texts),
    "queue": st.sampled_from(["default", "emails", "ünï queue"]),
    # Paired by _limit_with_key: the database refuses one without the other.
    "concurrency_key": _optional(st.sampled_from(["", "customer-7"])),
    "concurrency_limit": _optional(st.integers(min_value=1, max_value=2**31 - 1)),
    # Two keys (per task) for eight ids: inserts often hit a taken key, in the table or in
    # their own batch.
    "idempotency_key": _optional(st.sampled_from(KEYS)),
    "priority": priorities,
}

_UPDATE_FIELDS: Final[dict[str, st.SearchStrategy[object]]] = {
    "updated_at": stored_times,
    "run_output": _optional(texts),
    "output": _optional(texts),
    "children_tasks_completed_count": _optional(int32s),
    "children_tasks": _optional(task_ref_tuples),
    "children_tasks_errors": _optional(child_error_tuples),
    "finalize_task": _optional(task_refs),
    "finalize_task_error": _optional(errors),
    "error": _optional(errors),
    "unset_error": st.booleans(),
    "status": _optional(statuses),
    "is_closed": _optional(st.booleans()),
    "needs_promise_cancellation": _optional(st.booleans()),
    "retry_attempts": _optional(int32s),
    "lease_expiries": _optional(int32s),
    "start_at": _optional(stored_times),
    "started_at": _optional(stored_times),
    "finished_at": _optional(stored_times),
    "expires_at": _optional(stored_times),
    "unset_expires_at": st.booleans(),
    "version": _optional(versions),
}


def check_field_coverage() -> None:
    """Fail if a contract dataclass has a field this module does not generate (or vice versa)."""
    for cls, table in (
        (TaskExecutionRecord, _RECORD_FIELDS),
        (TaskExecutionUpdate, _UPDATE_FIELDS),
    ):
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields == set(table), (
            f"{cls.__name__}: fields without a strategy {sorted(fields - set(table))}, "
            f"strategies without a field {sorted(set(table) - fields)}"
        )


def _build(cls: type[_T], table: dict[str, st.SearchStrategy[object]]) -> st.SearchStrategy[_T]:
    return st.fixed_dictionaries(table).map(lambda kwargs: cls(**kwargs))


def _limit_with_key(record: TaskExecutionRecord) -> TaskExecutionRecord:
    """A concurrency key and limit come together (the tables' CHECK): one drawn alone is
    dropped."""
    if (record.concurrency_key is None) == (record.concurrency_limit is None):
        return record
    return dataclasses.replace(record, concurrency_key=None, concurrency_limit=None)


records: Final = _build(TaskExecutionRecord, _RECORD_FIELDS).map(_limit_with_key)
updates: Final = _build(TaskExecutionUpdate, _UPDATE_FIELDS)

# Batches may repeat an id of a stored row, and sometimes one of their own: such inserts must
# fail. Mostly the ids within a batch are distinct, so that the table fills up.
record_batches: Final = st.one_of(
    st.lists(records, min_size=1, max_size=3, unique_by=lambda r: r.execution_id),
    st.lists(records, min_size=1, max_size=3, unique_by=lambda r: r.execution_id),
    st.lists(records, min_size=2, max_size=3),
)

initial_batches: Final = st.lists(
    records, min_size=1, max_size=len(IDS) - 2, unique_by=lambda r: r.execution_id
)

# --- arguments of the operations -----------------------------------------------------------

# Ids to read or write: mostly a few of the domain (repeats included: a repeated id is one row),
# sometimes none (which must touch nothing anywhere).
id_lists: Final = _rarely_empty(st.lists(st.sampled_from(IDS), min_size=1, max_size=4))
# One id: any of the domain (some are not stored: the write must report no match).
one_ids: Final = st.sampled_from(IDS)

# The guards of one item of a batch of guarded updates (the only update by filter left).
wheres_by_ids: Final[st.SearchStrategy[WhereByExecutionIds]] = st.builds(
    WhereByExecutionIds,
    execution_ids=id_lists,
    statuses=_optional(status_lists),
    needs_promise_cancellation=_optional(st.booleans()),
    version=_optional(versions),
)
# A batch: items often name the same rows, so that a later item sees an earlier one's write.
update_batches: Final = st.lists(st.tuples(wheres_by_ids, updates), min_size=1, max_size=3)

# Claims: a moment among the stored times (so some rows are due and some not), a small batch.
claim_times: Final = stored_times
claim_limits: Final = st.integers(1, 4)
lease_ms: Final = st.sampled_from((1, 100))

# The `now` a write stores: whole milliseconds, like every stored time.
write_times: Final = stored_times
# The `now` the lease expirer compares `expires_at` with: it may fall between two milliseconds.
expiry_times: Final = bounds

# A limit is >= 1; one beyond any row count (and beyond the SQL integer types) means all rows.
limits: Final = st.integers(1, 7) | st.sampled_from((2**31, 2**63))
