"""Guarantee 7: a model-based test of the storage contract (``storage/types.py``).

A hypothesis ``RuleBasedStateMachine`` drives random sequences of contract operations against
the SQLite and PostgreSQL storages, with the in-memory storage as the model, and demands that
all three agree at every step: the same ids in the same order, the same records, the same
counts, the same duplicate-id failures. The operations:

* insert a batch of records (ids from a domain of eight, so batches often repeat an id or hit a
  stored one: that insert must fail on every backend and store nothing; idempotency keys from a
  domain of two, so records often hit a key taken in the table or earlier in their batch: they
  are skipped, and every backend must return the same holder ids, in input order);
* claim ready executions (a random ``now`` and batch size): the same rows, in the same order
  (highest priority first, FIFO within one), with the same new values;
* the purpose-named reads: by ids (whole rows, or the finished ones' ids), the expired leases
  (a random ``now`` that may fall between two milliseconds) and the finished unclosed rows (all,
  or among given ids; whole rows or ids), each with a random limit (a few, or beyond any row
  count and the SQL integer types);
* a batch of guarded updates (random partial updates, every field and unset flag included, of
  random ids under random guards, version guards included; items often name the same rows);
* the purpose-named writes: close or postpone closing, cancel one execution (guarded by the
  status and version read, or by random ones), cancel the active among some ids (some of them
  "running here"), take cancellation requests (with a limit), fail an unreadable execution;
* several of those in one transaction that is then committed or rolled back by an exception;
  a refused insert in it either ends it (uncaught) or is caught, after which every later call
  and the end of the block must raise the refusal again on every backend.

After every step the whole table is compared (read by ids, in insertion order, and through the
operators' listing). Independently of the model, a rolled-back transaction and a refused insert
must leave the table exactly as it was, and every other operation must return, and leave in the
table, exactly what the contract's docstrings say, worked out from the rows before it
(:func:`_expected`): that is where the orders (insertion; ``updated_at`` then insertion for the
expired and the finished unclosed rows), the limits, the filters (status, ``is_closed``,
``expires_at < now``, ``needs_promise_cancellation``) and the guards are checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from tests._stored import all_records

from durable_execution.model import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    ExecutionErrorInfo,
    RetryOptions,
    TaskExecutionStatus,
)
from durable_execution.storage import (
    DuplicateExecutionIdError,
    DurableStorage,
    DurableStorageTx,
    TaskExecutionCancel,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

from . import _model_strategies as gen
from ._model_backends import NAMES, Backends

# --- operations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Insert:
    records: Sequence[TaskExecutionRecord]


@dataclass(frozen=True)
class Claim:
    now: datetime
    limit: int
    lease_ms: int


@dataclass(frozen=True)
class ReadByIds:
    """``get_task_executions`` or (``finished_only``) ``get_finished_task_execution_ids``."""

    execution_ids: Sequence[str]
    finished_only: bool


@dataclass(frozen=True)
class ReadExpired:
    now: datetime
    limit: int


@dataclass(frozen=True)
class ReadFinishedUnclosed:
    """``get_finished_unclosed_task_executions`` or (``ids_only``, which takes no ids)
    ``get_finished_unclosed_task_execution_ids``."""

    limit: int
    execution_ids: Sequence[str] | None
    ids_only: bool


@dataclass(frozen=True)
class UpdateEach:
    items: Sequence[tuple[WhereByExecutionIds, TaskExecutionUpdate]]


@dataclass(frozen=True)
class Close:
    """``close_task_executions`` or (``postpone``) ``postpone_closing_task_executions``."""

    execution_ids: Sequence[str]
    now: datetime
    postpone: bool


@dataclass(frozen=True)
class Cancel:
    """``cancel_task_execution``; ``as_read``: guarded by the row's status and version as the
    model holds them when the operation runs (:func:`_resolve`), else by the random ones."""

    execution_id: str
    status: TaskExecutionStatus
    version: int
    as_read: bool
    error: ExecutionErrorInfo
    needs_promise_cancellation: bool
    now: datetime


@dataclass(frozen=True)
class CancelActive:
    execution_ids: Sequence[str]
    error: ExecutionErrorInfo
    now: datetime
    running_here: Sequence[str]


@dataclass(frozen=True)
class TakeCancellationRequests:
    execution_ids: Sequence[str]
    now: datetime
    limit: int


@dataclass(frozen=True)
class FailUnreadable:
    execution_id: str
    error: ExecutionErrorInfo
    now: datetime


Read = ReadByIds | ReadExpired | ReadFinishedUnclosed
Write = UpdateEach | Close | Cancel | CancelActive | TakeCancellationRequests | FailUnreadable
Operation = Insert | Claim | Read | Write

reads: st.SearchStrategy[Read] = st.one_of(
    st.builds(ReadByIds, gen.id_lists, st.booleans()),
    st.builds(ReadExpired, gen.expiry_times, gen.limits),
    st.builds(
        ReadFinishedUnclosed,
        gen.limits,
        st.none() | gen.id_lists,
        st.booleans(),
    ).map(lambda op: dataclasses.replace(op, execution_ids=None) if op.ids_only else op),
)
writes: st.SearchStrategy[Write] = st.one_of(
    st.builds(UpdateEach, gen.update_batches),
    st.builds(Close, gen.id_lists, gen.write_times, st.booleans()),
    st.builds(
        Cancel,
        gen.one_ids,
        gen.statuses,
        gen.versions,
        st.booleans(),
        gen.errors,
        st.booleans(),
        gen.write_times,
    ),
    st.builds(CancelActive, gen.id_lists, gen.errors, gen.write_times, gen.id_lists),
    st.builds(TakeCancellationRequests, gen.id_lists, gen.write_times, gen.limits),
    st.builds(FailUnreadable, gen.one_ids, gen.errors, gen.write_times),
)
operations: st.SearchStrategy[Operation] = st.one_of(
    st.builds(Insert, gen.record_batches),
    st.builds(Claim, gen.claim_times, gen.claim_limits, gen.lease_ms),
    reads,
    writes,
)


@dataclass(frozen=True)
class Refused:
    """The outcome of an insert that raised :class:`DuplicateExecutionIdError`."""

    execution_ids: tuple[str, ...]


@dataclass(frozen=True)
class Claimed:
    """The outcome of a claim (no row is malformed here: every generated record decodes)."""

    records: list[TaskExecutionRecord]
    malformed: int


Outcome = bool | int | list[int] | list[str] | list[TaskExecutionRecord] | Refused | Claimed


class _RollBack(Exception):
    """Raised inside the transactions to roll them back."""


async def _apply(tx: DurableStorageTx, operation: Operation) -> Outcome:
    match operation:
        case Insert(records=records):
            try:
                return await tx.insert_task_executions(records)
            except DuplicateExecutionIdError as error:
                return Refused(tuple(error.execution_ids))
        case Claim(now=now, limit=limit, lease_ms=lease_ms):
            claimed = await tx.claim_ready_task_executions(now=now, limit=limit, lease_ms=lease_ms)
            return Claimed(claimed.records, len(claimed.malformed))
        case ReadByIds(execution_ids=ids, finished_only=True):
            return await tx.get_finished_task_execution_ids(ids)
        case ReadByIds(execution_ids=ids):
            return await tx.get_task_executions(ids)
        case ReadExpired(now=now, limit=limit):
            return await tx.get_expired_task_executions(now=now, limit=limit)
        case ReadFinishedUnclosed(limit=limit, ids_only=True):
            return await tx.get_finished_unclosed_task_execution_ids(limit=limit)
        case ReadFinishedUnclosed(limit=limit, execution_ids=ids):
            return await tx.get_finished_unclosed_task_executions(limit=limit, execution_ids=ids)
        case UpdateEach(items=items):
            return await tx.update_task_executions_each(items)
        case Close(execution_ids=ids, now=now, postpone=True):
            return await tx.postpone_closing_task_executions(ids, now=now)
        case Close(execution_ids=ids, now=now):
            return await tx.close_task_executions(ids, now=now)
        case Cancel() as cancel:
            return await tx.cancel_task_execution(
                TaskExecutionCancel(
                    cancel.execution_id,
                    status=cancel.status,
                    version=cancel.version,
                    error=cancel.error,
                    needs_promise_cancellation=cancel.needs_promise_cancellation,
                    now=cancel.now,
                )
            )
        # These two return their ids in any order (the contract): compared as sorted lists.
        case CancelActive(execution_ids=ids, error=error, now=now, running_here=here):
            return sorted(
                await tx.cancel_active_task_executions(ids, error=error, now=now, running_here=here)
            )
        case TakeCancellationRequests(execution_ids=ids, now=now, limit=limit):
            return sorted(await tx.take_cancellation_requests(ids, now=now, limit=limit))
        case FailUnreadable(execution_id=execution_id, error=error, now=now):
            return await tx.fail_unreadable_task_execution(execution_id, error=error, now=now)


async def _stored(tx: DurableStorageTx) -> list[TaskExecutionRecord]:
    """Every row of the transaction's view, in insertion order (every id is in the domain)."""
    return await tx.get_task_executions(gen.IDS)


async def _resolve(model_tx: DurableStorageTx, operation: Operation) -> Operation:
    """A cancel ``as_read`` takes the status and version of the row as the model holds it (what
    the executor passes: a cancel that hits); every backend then runs the same operation."""
    if isinstance(operation, Cancel) and operation.as_read:
        rows = await model_tx.get_task_executions([operation.execution_id])
        if rows:
            return dataclasses.replace(operation, status=rows[0].status, version=rows[0].version)
    return operation


async def _expected_insert(
    model_tx: DurableStorageTx, operation: Insert
) -> tuple[list[str], set[str]]:
    """What the contract says an insert does, worked out from the stored rows (independently of
    the model's own insert): the id standing for each record, and the ids that refuse it.

    Records are taken in order: one whose (task_id, key) is held, by a stored row or an earlier
    record of the batch, stands for the holder and is not inserted; any other is inserted, and
    its id refuses the batch if it is stored or was inserted earlier in the batch."""
    stored_rows = await _stored(model_tx)
    held = {
        (row.task_id, row.idempotency_key): row.execution_id
        for row in stored_rows
        if row.idempotency_key is not None
    }
    taken = {row.execution_id for row in stored_rows}
    resolved: list[str] = []
    duplicates: set[str] = set()
    for record in operation.records:
        if record.idempotency_key is not None:
            key = (record.task_id, record.idempotency_key)
            if key in held:
                resolved.append(held[key])
                continue
            held[key] = record.execution_id
        if record.execution_id in taken:
            duplicates.add(record.execution_id)
        taken.add(record.execution_id)
        resolved.append(record.execution_id)
    return resolved, duplicates


# --- what the contract says, worked out from the rows before an operation ---------------------


def _oldest_first(rows: list[TaskExecutionRecord]) -> list[TaskExecutionRecord]:
    """Oldest ``updated_at`` first, ties in insertion order (``rows`` is in insertion order and
    the sort is stable)."""
    return sorted(rows, key=lambda row: row.updated_at)


def _updated(row: TaskExecutionRecord, update: TaskExecutionUpdate) -> TaskExecutionRecord:
    """``row`` after ``update``: every field it gives (``None``: unchanged), the unset flags
    clearing theirs (and winning over a value given with them), ``updated_at`` always."""
    values = {
        field.name: getattr(update, field.name)
        for field in dataclasses.fields(update)
        if field.name not in ("unset_error", "unset_expires_at")
        and getattr(update, field.name) is not None
    }
    if update.unset_error:
        values["error"] = None
    if update.unset_expires_at:
        values["expires_at"] = None
    return dataclasses.replace(row, **values)


def _guarded(row: TaskExecutionRecord, where: WhereByExecutionIds) -> bool:
    return (
        row.execution_id in where.execution_ids
        and (where.statuses is None or row.status in where.statuses)
        and (
            where.needs_promise_cancellation is None
            or row.needs_promise_cancellation == where.needs_promise_cancellation
        )
        and (where.version is None or row.version == where.version)
    )


def _expected(
    rows: list[TaskExecutionRecord], operation: Read | Write
) -> tuple[Outcome, list[TaskExecutionRecord]]:
    """The outcome of ``operation`` on a table holding ``rows`` (in insertion order), and the
    rows it leaves, as the docstrings of ``DurableStorageTx`` state them."""
    after = list(rows)

    def write(
        chosen: list[TaskExecutionRecord], change: dict[str, object]
    ) -> list[TaskExecutionRecord]:
        ids = {row.execution_id for row in chosen}
        for index, row in enumerate(after):
            if row.execution_id in ids:
                after[index] = dataclasses.replace(row, **change)  # type: ignore[arg-type]
        return chosen

    def among(ids: Sequence[str] | None) -> list[TaskExecutionRecord]:
        return [row for row in after if ids is None or row.execution_id in ids]

    def finished_unclosed(ids: Sequence[str] | None) -> list[TaskExecutionRecord]:
        return [r for r in among(ids) if r.status in FINISHED_STATUSES and not r.is_closed]

    outcome: Outcome
    match operation:
        case ReadByIds(execution_ids=ids, finished_only=True):
            outcome = [r.execution_id for r in among(ids) if r.status in FINISHED_STATUSES]
        case ReadByIds(execution_ids=ids):
            outcome = among(ids)
        case ReadExpired(now=now, limit=limit):
            expired = [
                row
                for row in after
                if row.status == "running"
                and not row.is_closed
                and row.expires_at is not None
                and row.expires_at < now
            ]
            outcome = _oldest_first(expired)[:limit]
        case ReadFinishedUnclosed(limit=limit, ids_only=True):
            outcome = [r.execution_id for r in _oldest_first(finished_unclosed(None))[:limit]]
        case ReadFinishedUnclosed(limit=limit, execution_ids=ids):
            outcome = _oldest_first(finished_unclosed(ids))[:limit]
        case UpdateEach(items=items):
            counts: list[int] = []
            for where, update in items:
                matched = [index for index, row in enumerate(after) if _guarded(row, where)]
                for index in matched:
                    after[index] = _updated(after[index], update)
                counts.append(len(matched))
            outcome = counts
        case Close(execution_ids=ids, now=now, postpone=postpone):
            change: dict[str, object] = {"updated_at": now}
            if not postpone:
                change["is_closed"] = True
            outcome = len(write(among(ids), change))
        case Cancel() as cancel:
            hit = [
                row
                for row in among([cancel.execution_id])
                if row.status == cancel.status and row.version == cancel.version
            ]
            for row in hit:
                write(
                    [row],
                    {
                        "status": "cancelled",
                        "error": cancel.error,
                        "needs_promise_cancellation": cancel.needs_promise_cancellation,
                        "finished_at": cancel.now,
                        "updated_at": cancel.now,
                        "version": row.version + 1,
                    },
                )
            outcome = bool(hit)
        case CancelActive(execution_ids=ids, error=error, now=now, running_here=here):
            active = [row for row in among(ids) if row.status in ACTIVE_STATUSES]
            for row in active:
                write(
                    [row],
                    {
                        "status": "cancelled",
                        "error": error,
                        "needs_promise_cancellation": row.execution_id not in here,
                        "finished_at": now,
                        "updated_at": now,
                    },
                )
            outcome = sorted(row.execution_id for row in active)
        case TakeCancellationRequests(execution_ids=ids, now=now, limit=limit):
            asking = [row for row in among(ids) if row.needs_promise_cancellation][:limit]
            write(asking, {"needs_promise_cancellation": False, "updated_at": now})
            outcome = sorted(row.execution_id for row in asking)
        case FailUnreadable(execution_id=execution_id, error=error, now=now):
            active = [row for row in among([execution_id]) if row.status in ACTIVE_STATUSES]
            write(
                active,
                {
                    "status": "failed",
                    "error": error,
                    "started_at": now,
                    "finished_at": now,
                    "updated_at": now,
                    "expires_at": None,
                },
            )
            outcome = bool(active)
    return outcome, after


def _describe(outcomes: Sequence[Outcome]) -> str:
    return "\n".join(
        f"  {name}: {outcome!r}" for name, outcome in zip(NAMES, outcomes, strict=True)
    )


async def _snapshot(storage: DurableStorage) -> tuple[list[TaskExecutionRecord], ...]:
    """Every row, in insertion order: read by ids through the contract, and listed through the
    operators' read-only queries (which see the whole table, whatever its ids)."""
    async with storage.transaction() as tx:
        by_ids = await _stored(tx)
    return by_ids, await all_records(storage)


async def _run_transaction(
    storages: Sequence[DurableStorage],
    operations: Sequence[Operation],
    *,
    roll_back: bool,
    catch_refusal: bool,
) -> None:
    """Run ``operations`` in one transaction per backend, side by side, comparing every outcome.

    A refused insert either ends the transaction with its error, as a caller that does not
    handle it would, or (``catch_refusal``) is caught and the transaction goes on: then every
    later call and the end of the block must raise the refusal again on every backend (a refused
    transaction stores nothing). ``roll_back`` ends the transaction with an exception. Either
    way the table must be as it was before; otherwise the transaction commits everywhere.
    """
    model = storages[0]
    before = await _snapshot(model)
    blocks = [storage.transaction() for storage in storages]
    txs = [await block.__aenter__() for block in blocks]
    ending: BaseException | None = _RollBack() if roll_back else None
    try:
        refused = await _run_operations(txs, operations, catch_refusal)
    except DuplicateExecutionIdError as error:  # a refusal nobody caught
        refused, ending = True, error
    except BaseException as error:  # a failed check: leave the transactions, report it
        for block in reversed(blocks):
            await block.__aexit__(type(error), error, error.__traceback__)
        raise
    exits: list[str] = []
    for block in reversed(blocks):
        try:
            if ending is None:
                await block.__aexit__(None, None, None)
            else:
                await block.__aexit__(type(ending), ending, ending.__traceback__)
            exits.append("left")
        except DuplicateExecutionIdError:
            exits.append("refused")
    expected_exit = "refused" if refused and ending is None else "left"
    assert exits == [expected_exit] * len(blocks), (
        f"leaving the transactions: {dict(zip(reversed(NAMES), exits, strict=True))}, "
        f"expected {expected_exit} everywhere"
    )
    if roll_back or refused:
        assert await _snapshot(model) == before, "a transaction that stores nothing stored"


async def _run_operations(
    txs: Sequence[DurableStorageTx], operations: Sequence[Operation], catch_refusal: bool
) -> bool:
    """Apply each operation on every backend and compare; whether an insert was refused."""
    refused = False
    for operation in operations:
        if refused:
            for name, tx in zip(NAMES, txs, strict=True):
                try:
                    outcome = await _apply(tx, operation)
                except DuplicateExecutionIdError:
                    continue
                assert isinstance(outcome, Refused), (
                    f"{name} ran {operation!r} in a refused transaction: {outcome!r}"
                )
            continue
        operation = await _resolve(txs[0], operation)
        expected: set[str] = set()
        resolved: list[str] = []
        if isinstance(operation, Insert):
            resolved, expected = await _expected_insert(txs[0], operation)
        contract: tuple[Outcome, list[TaskExecutionRecord]] | None = None
        if not isinstance(operation, Insert | Claim):
            contract = _expected(await _stored(txs[0]), operation)
        outcomes = [await _apply(tx, operation) for tx in txs]
        if currently_in_test_context():  # the plain regression tests below run outside one
            event(_hit(operation, outcomes[0]))
        if isinstance(operation, Insert) and expected:
            _check_refused(operation, expected, outcomes)
            refused = True
            if not catch_refusal:
                raise DuplicateExecutionIdError(sorted(expected))
            continue
        assert all(o == outcomes[0] for o in outcomes), (
            f"backends disagree on {operation!r}:\n{_describe(outcomes)}"
        )
        if isinstance(operation, Insert):
            assert outcomes[0] == resolved, (
                f"{operation!r} returned {outcomes[0]}, the contract says {resolved}"
            )
        if isinstance(operation, Claim):
            _check_claim_order(operation, outcomes[0])
        if contract is not None:
            outcome, rows = contract
            assert outcomes[0] == outcome, (
                f"{operation!r} returned {outcomes[0]!r}, the contract says {outcome!r}"
            )
            assert await _stored(txs[0]) == rows, (
                f"{operation!r} left other rows than the contract says"
            )
    return refused


def _hit(operation: Operation, outcome: Outcome) -> str:
    """How an operation went, as a hypothesis ``event``: a statistics run shows how often the
    random arguments hit rows (a test whose reads all come back empty proves little)."""
    name = type(operation).__name__
    match outcome:
        case Refused():
            return "insert refused (duplicate id)"
        case Claimed(records=records):
            return f"claim took {'some' if records else 'no'} rows"
        case list() if isinstance(operation, Insert):
            skipped = sum(
                resolved != own.execution_id
                for resolved, own in zip(outcome, operation.records, strict=True)
            )
            return f"insert stored, {'some' if skipped else 'no'} records skipped for their key"
        case list() if isinstance(operation, UpdateEach):
            return f"{name}: {sum(1 for count in outcome if count)} of {len(outcome)} items hit"
        case bool() | int() | list():
            return f"{name}: {'some' if outcome else 'no'} rows"


def _check_refused(operation: Insert, expected: set[str], outcomes: Sequence[Outcome]) -> None:
    for name, outcome in zip(NAMES, outcomes, strict=True):
        assert isinstance(outcome, Refused), (
            f"{name} accepted an insert of duplicate ids {sorted(expected)}: {operation!r}"
        )
        # Which duplicates an error names is the backend's choice (PostgreSQL reports the first
        # conflict only); it must name some, and only real ones.
        assert outcome.execution_ids, f"{name} named no duplicate id"
        assert set(outcome.execution_ids) <= expected, (
            f"{name} named {outcome.execution_ids}, the duplicates are {sorted(expected)}"
        )


def _check_claim_order(operation: Claim, outcome: Outcome) -> None:
    """The model's own check: claimed rows come highest priority first, then by start_at; all
    are due and now running."""
    assert isinstance(outcome, Claimed)
    records = outcome.records
    assert len(records) <= operation.limit
    keys = [(-r.priority, r.start_at) for r in records]
    assert keys == sorted(keys), f"claim order: {keys}"
    assert all(r.status == "running" and r.start_at <= operation.now for r in records)


# --- the state machine ----------------------------------------------------------------------


class StorageContractMachine(RuleBasedStateMachine):
    """Memory, SQLite and PostgreSQL storages, fed the same operations, must stay identical."""

    backends: Backends  # set by the test before the machine runs

    def __init__(self) -> None:
        super().__init__()
        self.backends.reset()  # a fresh, empty table for every example

    def _transaction(
        self,
        operations: Sequence[Operation],
        *,
        roll_back: bool = False,
        catch_refusal: bool = False,
    ) -> None:
        self.backends.run(
            _run_transaction(
                self.backends.storages,
                operations,
                roll_back=roll_back,
                catch_refusal=catch_refusal,
            )
        )

    @initialize(batch=gen.initial_batches)
    def fill(self, batch: list[TaskExecutionRecord]) -> None:
        """Start from a few rows: reads and writes on an empty table prove little."""
        self._transaction([Insert(batch)])

    @rule(batch=gen.record_batches)
    def insert(self, batch: list[TaskExecutionRecord]) -> None:
        self._transaction([Insert(batch)])

    @rule(operation=reads)
    def read(self, operation: Read) -> None:
        self._transaction([operation])

    @rule(operation=writes)
    def write(self, operation: Write) -> None:
        self._transaction([operation])

    @rule(now=gen.claim_times, limit=gen.claim_limits, lease_ms=gen.lease_ms)
    def claim(self, now: datetime, limit: int, lease_ms: int) -> None:
        self._transaction([Claim(now, limit, lease_ms)])

    @rule(
        operations=st.lists(operations, min_size=1, max_size=4),
        roll_back=st.booleans(),
        catch_refusal=st.booleans(),
    )
    def transaction(
        self, operations: list[Operation], roll_back: bool, catch_refusal: bool
    ) -> None:
        self._transaction(operations, roll_back=roll_back, catch_refusal=catch_refusal)

    @invariant()
    def all_backends_hold_the_same_rows(self) -> None:
        snapshots = [self.backends.run(_snapshot(s)) for s in self.backends.storages]
        for name, snapshot in zip(NAMES[1:], snapshots[1:], strict=True):
            assert snapshot == snapshots[0], (
                f"{name} holds other rows than the model:\n  model: {snapshots[0]!r}\n"
                f"  {name}: {snapshot!r}"
            )


@pytest.fixture
def backends(sqlite_path: Path, postgres_url: str) -> Iterator[Backends]:
    opened = Backends(sqlite_path, postgres_url)
    try:
        opened.open()
        yield opened
    finally:
        opened.close()


def _run_machine(backends: Backends, *, max_examples: int, steps: int) -> None:
    gen.check_field_coverage()

    class Machine(StorageContractMachine):
        pass

    Machine.backends = backends
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[
                # Thirty steps of thirty-field records are big by nature.
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        ),
    )


# Hypothesis describes the rules' strategies once; the records' is long, and saying so is noise.
_QUIET_REPR = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@_QUIET_REPR
def test_storages_agree_with_the_model(backends: Backends) -> None:
    """The CI variant: bounded so that it takes well under a minute."""
    _run_machine(backends, max_examples=40, steps=30)


@pytest.mark.slow
@_QUIET_REPR
def test_storages_agree_with_the_model_soak(backends: Backends) -> None:
    """The on-demand variant (``pytest -m slow``): many more and longer sequences."""
    _run_machine(backends, max_examples=400, steps=60)


# --- the machine's findings, kept as plain regression tests ---------------------------------


def _record(execution_id: str) -> TaskExecutionRecord:
    return TaskExecutionRecord(
        task_id="t",
        execution_id=execution_id,
        retry_options=RetryOptions(max_attempts=0),
        sleep_ms_before_run=0,
        timeout_ms=0,
        run_input="",
        status="ready",
        start_at=gen.T0,
        created_at=gen.T0,
        updated_at=gen.T0,
    )


def _transaction_on_all(
    backends: Backends, operations: Sequence[Operation], *, catch_refusal: bool = False
) -> None:
    backends.run(
        _run_transaction(
            backends.storages, operations, roll_back=False, catch_refusal=catch_refusal
        )
    )


def _assert_stored_ids(backends: Backends, expected: list[str]) -> None:
    for name, storage in zip(NAMES, backends.storages, strict=True):
        by_insertion, _ = backends.run(_snapshot(storage))
        assert [r.execution_id for r in by_insertion] == expected, name


def test_a_limit_beyond_the_sql_integer_range_means_every_row(backends: Backends) -> None:
    """Shrunk (when reads took a generic ``limit``): ``limit=2**31`` overflowed PostgreSQL's
    ``integer`` parameter, ``2**63`` SQLite's; the in-memory model returned every row. Now the
    reads and writes that take a limit."""
    finished = dataclasses.replace(_record("te_1"), status="completed")
    asking = dataclasses.replace(_record("te_2"), needs_promise_cancellation=True)
    expired = dataclasses.replace(
        _record("te_3"), status="running", expires_at=gen.T0 - timedelta(seconds=1)
    )
    _transaction_on_all(backends, [Insert([_record("te_0"), finished, asking, expired])])
    _transaction_on_all(
        backends,
        [
            operation
            for limit in (2**31, 2**63)
            for operation in (
                ReadExpired(gen.T0, limit),
                ReadFinishedUnclosed(limit, None, ids_only=False),
                ReadFinishedUnclosed(limit, ["te_1"], ids_only=False),
                ReadFinishedUnclosed(limit, None, ids_only=True),
            )
        ]
        + [TakeCancellationRequests(list(gen.IDS), gen.T0, 2**63)],
    )
    _assert_stored_ids(backends, ["te_0", "te_1", "te_2", "te_3"])


def test_a_caught_refusal_stores_nothing_on_every_backend(backends: Backends) -> None:
    """Shrunk: an insert refused as duplicate, caught, then the block left normally. Memory and
    SQLite committed the transaction's other writes; PostgreSQL's transaction was aborted, so
    every later call failed with ``InFailedSqlTransaction`` and COMMIT silently rolled back."""
    _transaction_on_all(backends, [Insert([_record("te_0")])])
    _transaction_on_all(
        backends,
        [
            Insert([_record("te_1")]),
            Insert([_record("te_0")]),  # refused: te_0 exists
            ReadByIds(gen.IDS, finished_only=False),
            Insert([_record("te_2")]),
        ],
        catch_refusal=True,
    )
    _assert_stored_ids(backends, ["te_0"])
