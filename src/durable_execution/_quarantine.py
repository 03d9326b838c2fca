"""Poison rows: stored executions that cannot be decoded, set aside so that the loops go on.

A row whose JSON columns are malformed makes every read that returns it raise
:class:`MalformedRowError` (naming the execution and the column). Retrying cannot help, and a
background loop that kept retrying would stall on it for good — a ready poison row at the head of
the FIFO would block every claim. So a loop that meets one *quarantines* it: a write guarded by
the active statuses (``fail_unreadable_task_execution``) makes it ``failed`` with an error saying
what is wrong (the write needs no decoding, and it replaces the ``error`` column, which repairs a
row whose only fault was there).
The read is then repeated without it. A quarantined row that still does not decode is closed
without its effects by the closing loop (see ``_closing``), and its handle reports the error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final, TypeVar

from durable_execution.errors import DurableExecutionError
from durable_execution.storage.errors import MalformedRowError
from durable_execution.storage.types import DurableStorageTx

_T = TypeVar("_T")

# At most this many poison rows are set aside per read (one transaction); the next batch goes on.
MAX_QUARANTINED_PER_READ: Final = 100


def quarantine_error(error: MalformedRowError) -> DurableExecutionError:
    return DurableExecutionError(
        f"{error}; the execution was failed because it cannot be read (repair or delete the row)",
        is_retryable=False,
    )


async def quarantine(tx: DurableStorageTx, error: MalformedRowError, now: datetime) -> bool:
    """Fail the execution ``error`` names if it is still active; whether it was."""
    return await tx.fail_unreadable_task_execution(
        error.execution_id, error=quarantine_error(error).to_info(), now=now
    )


async def read_quarantining(
    tx: DurableStorageTx, read: Callable[[], Awaitable[list[_T]]], now: datetime
) -> tuple[list[_T], list[MalformedRowError]]:
    """``read()``, quarantining each active poison row it trips over and reading again.

    Returns the rows and the errors of the rows quarantined. A poison row that is not active
    (already finished) is not this read's to fix: its error propagates.
    """
    quarantined: list[MalformedRowError] = []
    while len(quarantined) < MAX_QUARANTINED_PER_READ:
        try:
            return await read(), quarantined
        except MalformedRowError as error:
            seen = any(q.execution_id == error.execution_id for q in quarantined)
            if seen or not await quarantine(tx, error, now):
                raise
            quarantined.append(error)
    return [], quarantined
