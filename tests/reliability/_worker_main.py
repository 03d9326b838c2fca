"""A worker process for the worker-process tests: one executor on a real database.

Run as ``python tests/reliability/_worker_main.py URL SIDE_FILE STATE_DIR [options]``. It opens the
storage, registers those tasks, starts the executor, writes ``STATE_DIR/ready-<pid>`` and
runs until ``STATE_DIR/stop`` exists; then it shuts down cleanly and exits 0. The tests kill it
(SIGKILL), pause it (SIGSTOP/SIGCONT) or stop it, and read the side file and the storage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from tests.reliability._crash_tasks import SideStore, register_tasks

# Run as a script with PYTHONPATH=src:<repo root> (the tests set it), so both import.
from durable_execution import DurableExecutor
from durable_execution.storage import open_storage


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("side", type=Path)
    parser.add_argument("state", type=Path)
    parser.add_argument("--expire-ms", type=int, default=2000)
    parser.add_argument("--max-lease-expiries", type=int, default=0, help="0 means None")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--intra-batch-sleep-ms", type=int, default=50)
    return parser.parse_args()


async def _main(args: argparse.Namespace) -> None:
    side = SideStore(args.side)
    stop = args.state / "stop"
    async with open_storage(args.url) as storage:
        executor = DurableExecutor(
            storage,
            expire_ms=args.expire_ms,
            max_lease_expiries=args.max_lease_expiries or None,
            max_concurrent_task_executions=args.concurrency,
            background_process_intra_batch_sleep_ms=args.intra_batch_sleep_ms,
        )
        register_tasks(executor, side, args.state / "gate")
        async with executor:
            (args.state / f"ready-{os.getpid()}").touch()
            # The stop signal is a file another process creates: nothing to await but time.
            while not stop.exists():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    side.close()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.WARNING,
        format=f"%(asctime)s pid={os.getpid()} %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_main(_parse()))
