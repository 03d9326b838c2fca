"""The batched lease renewal (``DurableStorageTx.renew_task_execution_leases``) on every
backend: one statement, however many leases.

A renewal moves ``expires_at`` of the rows still running at exactly the given version, and
nothing else: not the version (the attempt's result write is guarded by its claimed version and
must still match after renewals), not ``updated_at``. A row that moved on is never revived.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from durable_execution.storage import (
    DurableStorage,
    StorageError,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)
from durable_execution.storage.types import HeldLease

from ._records import T0, at, insert, read, record, update_one

ROWS = [
    record("te_mine", status="running", version=3, started_at=at(0), expires_at=at(10)),
    # Expired and claimed again by another executor: asked for at its old version 3.
    record("te_taken", status="running", version=4, started_at=at(0), expires_at=at(10)),
    # Finished (or cancelled) meanwhile, at the asked version.
    record("te_done", status="completed", version=3, finished_at=at(5)),
    record("te_ready", status="ready", version=3),
    # Running, but not asked for.
    record("te_other", status="running", version=1, started_at=at(0), expires_at=at(10)),
]
ASKED = [
    HeldLease("te_mine", 3),
    HeldLease("te_taken", 3),
    HeldLease("te_done", 3),
    HeldLease("te_ready", 3),
    HeldLease("te_missing", 0),
]
UNTOUCHED = ["te_taken", "te_done", "te_ready", "te_other"]


async def test_only_rows_still_running_at_their_version_are_renewed(
    storage: DurableStorage,
) -> None:
    await insert(storage, *ROWS)
    async with storage.transaction() as tx:
        renewed = await tx.renew_task_execution_leases(ASKED, expires_at=at(500))
    assert renewed == ["te_mine"]
    by_id = {r.execution_id: r for r in ROWS}
    # Only expires_at moved: same version (the result write's guard), same updated_at.
    assert await read(storage, "te_mine") == replace(by_id["te_mine"], expires_at=at(500))
    for execution_id in UNTOUCHED:
        assert await read(storage, execution_id) == by_id[execution_id]


async def test_renewal_never_bumps_the_version_so_the_claimed_guard_still_matches(
    storage: DurableStorage,
) -> None:
    await insert(storage, ROWS[0])
    for n in range(3):
        async with storage.transaction() as tx:
            renewed = await tx.renew_task_execution_leases(
                [HeldLease("te_mine", 3)], expires_at=at(100 * (n + 1))
            )
        assert renewed == ["te_mine"]
    async with storage.transaction() as tx:
        matched = await update_one(
            tx,
            WhereByExecutionIds(["te_mine"], statuses=["running"], version=3),
            TaskExecutionUpdate(updated_at=at(400), status="completed", version=4),
        )
    assert matched == 1


async def test_an_expired_lease_still_held_is_renewed(storage: DurableStorage) -> None:
    # Nobody took the row over (same version): renewing it after a pause is safe.
    await insert(storage, ROWS[0])
    async with storage.transaction() as tx:
        renewed = await tx.renew_task_execution_leases([HeldLease("te_mine", 3)], expires_at=at(5))
    assert renewed == ["te_mine"]
    row = await read(storage, "te_mine")
    assert row is not None
    assert row.expires_at == at(5)


async def test_a_rolled_back_renewal_leaves_the_lease(storage: DurableStorage) -> None:
    await insert(storage, *ROWS)

    class Rollback(Exception):
        pass

    async def renew_then_fail() -> None:
        async with storage.transaction() as tx:
            await tx.renew_task_execution_leases(ASKED, expires_at=at(500))
            raise Rollback

    with pytest.raises(Rollback):
        await renew_then_fail()
    assert await read(storage, "te_mine") == ROWS[0]


async def test_bad_arguments_are_refused_before_writing(storage: DurableStorage) -> None:
    await insert(storage, *ROWS)
    async with storage.transaction() as tx:
        renewer = tx
        assert await renewer.renew_task_execution_leases([], expires_at=at(5)) == []
        with pytest.raises(StorageError, match="twice"):
            await renewer.renew_task_execution_leases(
                [HeldLease("te_mine", 3), HeldLease("te_mine", 3)], expires_at=at(5)
            )
        with pytest.raises(ValueError, match="naive"):
            await renewer.renew_task_execution_leases(
                [HeldLease("te_mine", 3)], expires_at=T0.replace(tzinfo=None)
            )
    assert await read(storage, "te_mine") == ROWS[0]


async def test_many_leases_in_one_statement(storage: DurableStorage) -> None:
    rows = [
        record(f"te_{n:05}", status="running", version=n % 7, expires_at=at(0)) for n in range(1500)
    ]
    await insert(storage, *rows)
    async with storage.transaction() as tx:
        renewed = await tx.renew_task_execution_leases(
            [HeldLease(r.execution_id, r.version) for r in rows], expires_at=at(9)
        )
    assert sorted(renewed) == [r.execution_id for r in rows]
