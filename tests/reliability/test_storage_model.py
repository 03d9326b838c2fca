"""Guarantee 7: a model-based test of the storage contract (``storage/types.py``).

A hypothesis ``RuleBasedStateMachine`` drives random sequences of contract operations against
the SQLite and PostgreSQL storages, with the in-memory storage as the model, and demands that
all three agree at every step: the same ids in the same order, the same records, the same update
counts, the same duplicate-id failures. The operations:

* insert a batch of records (ids from a domain of eight, so batches often repeat an id or hit a
  stored one: that insert must fail on every backend and store nothing; idempotency keys from a
  domain of two, so records often hit a key taken in the table or earlier in their batch: they
  are skipped, and every backend must return the same holder ids, in input order);
* claim ready executions (a random ``now`` and batch size): the same rows, in the same order
  (highest priority first, FIFO within one), with the same new values;
* select ids or whole records with a random ``where`` variant, random optional filters, a random
  limit (None, 0, n, beyond any row count) and a random ``skip_locked_for_update``;
* update with a random partial update (every field, unset flags included) of random ids under
  random filters (version guards included);
* several of those in one transaction that is then committed or rolled back by an exception;
  a refused insert in it either ends it (uncaught) or is caught, after which every later call
  and the end of the block must raise the refusal again on every backend.

After every step the whole table is compared (in insertion order and in ``updated_at`` order).
Independently of the model, a rolled-back transaction and a refused insert must leave the table
exactly as it was, an update must count exactly the rows its ``where`` selected, and those rows
must then hold every value the update sets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
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

from durable_execution.model import ALL_STATUSES, RetryOptions
from durable_execution.storage import (
    DuplicateExecutionIdError,
    DurableStorage,
    DurableStorageTx,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    TaskExecutionWhere,
    WhereByExecutionIds,
    WhereByStatuses,
)

from . import _model_strategies as gen
from ._model_backends import NAMES, Backends

# --- operations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Insert:
    records: Sequence[TaskExecutionRecord]


@dataclass(frozen=True)
class Select:
    where: TaskExecutionWhere
    limit: int | None
    skip_locked_for_update: bool
    ids_only: bool


@dataclass(frozen=True)
class Update:
    where: WhereByExecutionIds
    update: TaskExecutionUpdate


@dataclass(frozen=True)
class Claim:
    now: datetime
    limit: int
    lease_ms: int


Operation = Insert | Select | Update | Claim

operations: st.SearchStrategy[Operation] = st.one_of(
    st.builds(Insert, gen.record_batches),
    st.builds(Select, gen.wheres, gen.limits, st.booleans(), st.booleans()),
    st.builds(Update, gen.wheres_by_ids, gen.updates),
    st.builds(Claim, gen.claim_times, gen.claim_limits, gen.lease_ms),
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


Outcome = int | list[str] | list[TaskExecutionRecord] | Refused | Claimed


class _RollBack(Exception):
    """Raised inside the transactions to roll them back."""


async def _apply(tx: DurableStorageTx, operation: Operation) -> Outcome:
    match operation:
        case Insert(records=records):
            try:
                return await tx.insert_task_executions(records)
            except DuplicateExecutionIdError as error:
                return Refused(tuple(error.execution_ids))
        case Select(where=where, limit=limit, skip_locked_for_update=lock, ids_only=True):
            return await tx.get_task_execution_ids(where, limit=limit, skip_locked_for_update=lock)
        case Select(where=where, limit=limit, skip_locked_for_update=lock):
            return await tx.get_task_executions(where, limit=limit, skip_locked_for_update=lock)
        case Update(where=where, update=update):
            return await tx.update_task_executions(where, update)
        case Claim(now=now, limit=limit, lease_ms=lease_ms):
            claimed = await tx.claim_ready_task_executions(now=now, limit=limit, lease_ms=lease_ms)
            return Claimed(claimed.records, len(claimed.malformed))


async def _expected_insert(
    model_tx: DurableStorageTx, operation: Insert
) -> tuple[list[str], set[str]]:
    """What the contract says an insert does, worked out from the stored rows (independently of
    the model's own insert): the id standing for each record, and the ids that refuse it.

    Records are taken in order: one whose (task_id, key) is held, by a stored row or an earlier
    record of the batch, stands for the holder and is not inserted; any other is inserted, and
    its id refuses the batch if it is stored or was inserted earlier in the batch."""
    stored_rows = await model_tx.get_task_executions(WhereByExecutionIds(gen.IDS))
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


def _describe(outcomes: Sequence[Outcome]) -> str:
    return "\n".join(
        f"  {name}: {outcome!r}" for name, outcome in zip(NAMES, outcomes, strict=True)
    )


async def _snapshot(storage: DurableStorage) -> tuple[list[TaskExecutionRecord], ...]:
    """Every row, in insertion order and in ``updated_at`` order (the two orders the contract
    defines over a whole table)."""
    async with storage.transaction() as tx:
        by_insertion = await tx.get_task_executions(WhereByExecutionIds(gen.IDS))
        by_updated_at = await tx.get_task_executions(WhereByStatuses(ALL_STATUSES))
    return by_insertion, by_updated_at


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
        expected: set[str] = set()
        resolved: list[str] = []
        if isinstance(operation, Insert):
            resolved, expected = await _expected_insert(txs[0], operation)
        selected: list[str] = []
        if isinstance(operation, Update):
            selected = await txs[0].get_task_execution_ids(operation.where)
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
        if isinstance(operation, Update):
            assert outcomes[0] == len(selected), (
                f"{operation!r} updated {outcomes[0]} rows, its where selects {selected}"
            )
            await _check_updated_rows(txs[0], selected, operation.update)
    return refused


def _hit(operation: Operation, outcome: Outcome) -> str:
    """How an operation went, as a hypothesis ``event``: a statistics run shows how often the
    random filters hit rows (a test whose selects all come back empty proves little)."""
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
        case int():
            return f"update matched {'some' if outcome else 'no'} rows"
        case list():
            where = operation.where.type if isinstance(operation, Select | Update) else "?"
            return f"select {where}: {'some' if outcome else 'no'} rows"


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


async def _check_updated_rows(
    model_tx: DurableStorageTx, updated: list[str], update: TaskExecutionUpdate
) -> None:
    """The model's own check: every updated row now holds each value the update sets."""
    expected = {
        f.name: getattr(update, f.name)
        for f in dataclasses.fields(update)
        if f.name not in ("unset_error", "unset_expires_at") and getattr(update, f.name) is not None
    }
    if update.unset_error:
        expected["error"] = None
    if update.unset_expires_at:
        expected["expires_at"] = None
    for row in await model_tx.get_task_executions(WhereByExecutionIds(updated)):
        actual = {name: getattr(row, name) for name in expected}
        assert actual == expected, f"{row.execution_id} after {update!r}: {actual}"


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
        """Start from a few rows: selects and updates on an empty table prove little."""
        self._transaction([Insert(batch)])

    @rule(batch=gen.record_batches)
    def insert(self, batch: list[TaskExecutionRecord]) -> None:
        self._transaction([Insert(batch)])

    @rule(
        where=gen.wheres,
        limit=gen.limits,
        skip_locked_for_update=st.booleans(),
        ids_only=st.booleans(),
    )
    def select(
        self,
        where: TaskExecutionWhere,
        limit: int | None,
        skip_locked_for_update: bool,
        ids_only: bool,
    ) -> None:
        self._transaction([Select(where, limit, skip_locked_for_update, ids_only)])

    @rule(where=gen.wheres_by_ids, update=gen.updates)
    def update(self, where: WhereByExecutionIds, update: TaskExecutionUpdate) -> None:
        self._transaction([Update(where, update)])

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
    """Shrunk: ``limit=2**31`` overflowed PostgreSQL's ``integer`` parameter, ``2**63``
    SQLite's; the in-memory model returned every row."""
    _transaction_on_all(backends, [Insert([_record("te_0")])])
    where = WhereByExecutionIds(["te_0"])
    _transaction_on_all(
        backends,
        [
            Select(where, limit, lock, ids_only)
            for limit in (2**31, 2**63)
            for lock in (False, True)
            for ids_only in (False, True)
        ],
    )


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
            Select(WhereByStatuses(ALL_STATUSES), None, False, True),
            Insert([_record("te_2")]),
        ],
        catch_refusal=True,
    )
    _assert_stored_ids(backends, ["te_0"])
