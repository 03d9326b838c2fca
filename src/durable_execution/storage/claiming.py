"""The set-based claim's fallback for poison rows, shared by the SQL backends.

The set-based claim (one ``UPDATE … RETURNING``) moves up to a batch of ready rows at once, and so
fails as a whole when one row cannot be moved: a ``timeout_ms`` whose lease ``now + timeout_ms +
margin`` overflows (PostgreSQL: ``bigint``/``timestamp out of range``; SQLite: the sum turns into
a float that a CHECK refuses), or any other value a CHECK refuses. Such a row, first in the FIFO,
used to stop every claim for good. The backends then claim the same candidates one row at a time
(in a savepoint on PostgreSQL, where a failed statement aborts the transaction; SQLite undoes just
the failed statement): a row whose own claim fails is left ``ready`` and reported among the
claim's ``malformed`` rows, which the executor fails ("quarantines") in the same transaction,
and the other rows are claimed as usual.

Only errors that name a fact about the data trigger this (see the backends); a lost connection
or a lock timeout still fails the claim and is retried like any other transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from durable_execution.storage.errors import MalformedRowError
from durable_execution.storage.types import ClaimedTaskExecutions, TaskExecutionRecord


class Candidate(Protocol):
    """A ready row the fallback tries to claim (the generated ``GetReadyTaskExecutionsToClaim``
    rows of both dialects)."""

    @property
    def execution_id(self) -> str: ...

    @property
    def timeout_ms(self) -> int: ...


_Row = TypeVar("_Row")


class PoisonSeen:
    """Whether a set-based claim of this storage failed on a row and the next claim should go
    row by row (PostgreSQL, where the failure aborts the transaction that saw it)."""

    def __init__(self) -> None:
        self.seen = False


def refused(candidate: Candidate, error: BaseException) -> MalformedRowError:
    """The poison row error for a row whose own claim failed with ``error``."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return MalformedRowError(
        candidate.execution_id,
        "row",
        f"claiming it failed ({first_line}); its timeout_ms is {candidate.timeout_ms}",
    )


def claim_each(
    candidates: Iterable[Candidate],
    claim_one: Callable[[str], _Row | None],
    decode: Callable[[_Row], TaskExecutionRecord],
    row_errors: tuple[type[BaseException], ...],
) -> ClaimedTaskExecutions:
    """The synchronous fallback (SQLite): ``claim_one`` runs the one-row claim, whose failure
    with one of ``row_errors`` leaves the row unchanged."""
    records: list[TaskExecutionRecord] = []
    malformed: list[MalformedRowError] = []
    for candidate in candidates:
        try:
            row = claim_one(candidate.execution_id)
        except row_errors as error:
            malformed.append(refused(candidate, error))
            continue
        if row is not None:
            _decode_into(row, decode, records, malformed)
    return ClaimedTaskExecutions(records=records, malformed=malformed)


async def claim_each_async(
    candidates: Iterable[Candidate],
    claim_one: Callable[[str], Awaitable[_Row | None]],
    decode: Callable[[_Row], TaskExecutionRecord],
    row_errors: tuple[type[BaseException], ...],
) -> ClaimedTaskExecutions:
    """The asynchronous fallback (PostgreSQL): ``claim_one`` must undo its own failure (run the
    statement in a savepoint)."""
    records: list[TaskExecutionRecord] = []
    malformed: list[MalformedRowError] = []
    for candidate in candidates:
        try:
            row = await claim_one(candidate.execution_id)
        except row_errors as error:
            malformed.append(refused(candidate, error))
            continue
        if row is not None:
            _decode_into(row, decode, records, malformed)
    return ClaimedTaskExecutions(records=records, malformed=malformed)


def _decode_into(
    row: _Row,
    decode: Callable[[_Row], TaskExecutionRecord],
    records: list[TaskExecutionRecord],
    malformed: list[MalformedRowError],
) -> None:
    # Claimed but unreadable: reported like the set-based claim's malformed rows.
    try:
        records.append(decode(row))
    except MalformedRowError as error:
        malformed.append(error)


def claimed_from_rows(
    rows: Iterable[_Row], decode: Callable[[_Row], TaskExecutionRecord]
) -> ClaimedTaskExecutions:
    """The claim's result from its rows, already in the claim's order: each row is decoded on
    its own, so a poison row is reported (the claim moved it too) without hiding the others."""
    records: list[TaskExecutionRecord] = []
    malformed: list[MalformedRowError] = []
    for row in rows:
        try:
            records.append(decode(row))
        except MalformedRowError as error:
            malformed.append(error)
    return ClaimedTaskExecutions(records=records, malformed=malformed)
