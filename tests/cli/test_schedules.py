"""``schedules`` lists what the database holds: timing, next run, last run and its status."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from datetime import timedelta
from pathlib import Path

from durable_execution import DurableExecutor, TaskContext, clock, open_storage
from durable_execution.storage import InspectableSchedulesStorage, ScheduleRecord

from ._support import cli, running_worker


async def make_schedules(db: str) -> str:
    """An interval schedule that fired once, a nightly one that has not yet, and an overdue
    one no executor defines; returns the execution id of the fired tick."""
    async with open_storage(db) as storage:
        long_ago = clock.now() - timedelta(hours=5)
        async with storage.transaction() as tx:
            await tx.register_task_schedules(
                [
                    ScheduleRecord(
                        schedule_id="zz-forgotten",
                        task_id="gone",
                        cron="*/5 * * * *",
                        every_ms=None,
                        timezone="UTC",
                        run_input="null",
                        next_tick_at=long_ago,
                        created_at=long_ago,
                        updated_at=long_ago,
                    )
                ]
            )
        executor = DurableExecutor(storage, background_process_intra_batch_sleep_ms=50)

        @executor.task(id="report", timeout_ms=5_000)
        def report(ctx: TaskContext, value: dict[str, int]) -> int:
            return value["pages"]

        executor.schedule(report, id="often", every_ms=200, input={"pages": 3})
        executor.schedule(
            report, id="nightly", cron="0 3 * * *", timezone="Europe/Berlin", input={"pages": 9}
        )
        assert isinstance(storage, InspectableSchedulesStorage)
        async with executor:
            for _ in range(500):
                listed = {
                    item.schedule.schedule_id: item for item in await storage.list_task_schedules()
                }
                if listed["often"].last_execution_status == "completed":
                    break
                await asyncio.sleep(0.02)
        execution_id = listed["often"].schedule.last_execution_id
        assert execution_id is not None
        return execution_id


async def test_schedules_lists_timing_next_and_last_runs(db_url: str) -> None:
    execution_id = await make_schedules(db_url)
    result = cli("schedules", "--db", db_url)
    assert result.returncode == 0, result.stderr
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[0].split()[:3] == ["schedule", "task", "timing"]
    nightly, often, forgotten = lines[1:4]
    when = r"[\d-]{10} [\d:]{8}"
    assert re.match(
        rf"nightly +report +cron 0 3 \* \* \* \(Europe/Berlin\) +{when} \(in .*\) +never$", nightly
    )
    assert re.match(
        rf"often +report +every 200 ms +.* [\d-]{{10}} [\d:]{{8}} {execution_id} completed$",
        often,
    )
    assert re.match(
        r"zz-forgotten +gone +cron \*/5 \* \* \* \* \(UTC\) .*\(overdue 5h 00m\)", forgotten
    )
    assert "1 overdue: no running executor fires them" in result.stdout


async def test_schedules_as_json(db_url: str) -> None:
    execution_id = await make_schedules(db_url)
    result = cli("schedules", "--db", db_url, "--json")
    assert result.returncode == 0, result.stderr
    listed = {item["schedule_id"]: item for item in json.loads(result.stdout)["schedules"]}
    assert list(listed) == ["nightly", "often", "zz-forgotten"]
    often = listed["often"]
    assert (often["every_ms"], often["cron"], often["input"]) == (200, None, {"pages": 3})
    assert (often["last_execution_id"], often["last_execution_status"]) == (
        execution_id,
        "completed",
    )
    assert often["overdue"] is False
    nightly = listed["nightly"]
    assert (nightly["cron"], nightly["timezone"], nightly["last_run_at"]) == (
        "0 3 * * *",
        "Europe/Berlin",
        None,
    )
    assert nightly["next_run_at"] > often["last_run_at"]
    assert listed["zz-forgotten"]["overdue"] is True


async def test_no_schedules(db_url: str) -> None:
    async with open_storage(db_url):
        pass  # migrated, empty
    result = cli("schedules", "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert "No schedules in" in result.stdout
    assert json.loads(cli("schedules", "--db", db_url, "--json").stdout) == {"schedules": []}


async def test_a_worker_fires_the_schedules_its_app_defines(db_url: str, tmp_path: Path) -> None:
    with running_worker(
        tmp_path, db_url, "--poll-interval-ms", "50", app="schedule_app:register"
    ) as worker:
        deadline = time.monotonic() + 30
        while True:
            result = cli("schedules", "--db", db_url, "--json")
            assert result.returncode == 0, result.stderr
            [listed] = json.loads(result.stdout)["schedules"]
            if listed["last_execution_status"] == "completed":
                break
            assert time.monotonic() < deadline, worker.log()
            await asyncio.sleep(0.1)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.log()
    assert (listed["schedule_id"], listed["task_id"], listed["input"]) == (
        "heartbeat-often",
        "heartbeat",
        "schedule_app",
    )
    assert "Schedule heartbeat-often fired tick schedule:heartbeat-often:" in worker.log()
