"""``durable-execution worker APP``: one executor process, run until SIGINT or SIGTERM.

Scaling out is running more of these against one database: every worker claims ready executions
with guarded writes, so each attempt runs in exactly one of them. On the first signal the worker
stops claiming and waits for the attempts it is running (they can watch
``ctx.is_shutdown_requested()``); a second signal stops it at once, like a crash: the abandoned
attempts' leases expire and another worker retries them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

import click

from durable_execution import DurableExecutor
from durable_execution._options import MAX_COUNT, MAX_DURATION_MS, validate_name
from durable_execution.cli._app import RegisterTasks, load_app
from durable_execution.cli._common import CliError, Target, opened, run, storage_options
from durable_execution.cli._worker_options import ExecutorTuning, executor_options, tuning
from durable_execution.logs import ExecutionLogFilter, ExecutionTextFormatter, JsonLogFormatter

LOG_FORMAT: Final = "%(asctime)s %(levelname)-7s [%(process)d] %(name)s: %(message)s"
DEFAULT_CONCURRENCY: Final = 1000
DEFAULT_POLL_INTERVAL_MS: Final = 500
FORCED_EXIT_STATUS: Final = 1
_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

logger = logging.getLogger("durable_execution.worker")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    target: Target
    app: str
    concurrency: int
    poll_interval_ms: int
    migrate: bool
    tuning: ExecutorTuning
    listen: bool = True
    # --queue: the queues served; empty: those of the app's tasks (the executor's default).
    queues: tuple[str, ...] = ()


LOG_FORMATS: Final = ("text", "json")


def configure_logging(level: str, log_format: str = "text") -> None:
    """One line per event on stderr, with the process id so that several workers' logs mix.

    Records logged inside an attempt (by the library or the app) carry its execution's ids: the
    JSON format writes them as fields, the text format appends them to a message that does not
    already name the execution.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ExecutionLogFilter())
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(ExecutionTextFormatter(LOG_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class _Signals:
    """Turns the first SIGINT/SIGTERM into a shutdown request and the second into an exit."""

    def __init__(self, executor: DurableExecutor) -> None:
        self.stop = asyncio.Event()
        self._executor = executor
        self._received = 0

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for number in _SIGNALS:
            loop.add_signal_handler(number, self._on_signal, number)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for number in _SIGNALS:
            loop.remove_signal_handler(number)

    def _on_signal(self, number: int) -> None:
        self._received += 1
        name = signal.Signals(number).name
        running = len(self._executor.get_running_task_execution_ids())
        if self._received == 1:
            if running:
                logger.info(
                    "Received %s: shutting down once %d running execution(s) finish "
                    "(send it again to stop at once)",
                    name,
                    running,
                )
            else:
                logger.info("Received %s: shutting down", name)
            self.stop.set()
            return
        logger.warning(
            "Received %s again: stopping now; %d running execution(s) abandoned, another worker "
            "retries them once their leases expire",
            name,
            running,
        )
        logging.shutdown()
        # A crash by design: nothing durable is lost, and waiting is what the user refused.
        os._exit(FORCED_EXIT_STATUS)


def _register(register: RegisterTasks, executor: DurableExecutor, app: str) -> None:
    try:
        register(executor)
    except Exception as error:
        logger.exception("%s failed while registering tasks", app)
        raise CliError(
            f"{app} failed while registering tasks: {type(error).__name__}: {error}"
        ) from error
    if not executor.registered_task_ids:
        raise CliError(
            f"{app} registered no tasks: it must call executor.task(...) or "
            "executor.parent_task(...) on the executor it receives"
        )


def _task_list(executor: DurableExecutor) -> str:
    # Sequential-chain wrappers (st_…) are an implementation detail of sequential_tasks.
    ids = sorted(
        task_id for task_id in executor.registered_task_ids if not task_id.startswith("st_")
    )
    return ", ".join(ids)


async def run_worker(config: WorkerConfig, register: RegisterTasks) -> None:
    async with opened(
        config.target,
        migrate=config.migrate,
        must_exist=not config.migrate,
        listen=config.listen,
    ) as storage:
        executor = DurableExecutor(
            storage,
            logger=logging.getLogger("durable_execution"),
            max_concurrent_task_executions=config.concurrency,
            background_process_intra_batch_sleep_ms=config.poll_interval_ms,
            expire_ms=config.tuning.expire_ms,
            max_lease_expiries=config.tuning.max_lease_expiries,
            max_serialized_size_bytes=config.tuning.max_serialized_size_bytes,
            retention=config.tuning.retention,
            queues=config.queues or None,
        )
        _register(register, executor, config.app)
        signals = _Signals(executor)
        signals.install()
        try:
            await executor.start()
            logger.info(
                "Worker started: app %s, tasks %s, concurrency %d, storage %s, queues %s",
                config.app,
                _task_list(executor),
                config.concurrency,
                config.target.shown,
                ", ".join(config.queues) if config.queues else "default and its tasks'",
            )
            logger.info("Executor options: %s", config.tuning.describe(config.poll_interval_ms))
            await signals.stop.wait()
            await executor.shutdown()
        finally:
            signals.uninstall()
    logger.info("Worker stopped")


def _queue_names(
    _context: click.Context, _parameter: click.Parameter, names: tuple[str, ...]
) -> tuple[str, ...]:
    try:
        return tuple(dict.fromkeys(validate_name("A queue name", name) for name in names))
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command()
@click.argument("app", metavar="APP")
@storage_options()
@click.option(
    "--concurrency",
    type=click.IntRange(1, MAX_COUNT),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Most executions this worker runs at once (sync task functions also share Python's "
    "default thread pool).",
)
@click.option(
    "--app-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory put first on the import path before APP is imported.",
)
@click.option(
    "--poll-interval-ms",
    type=click.IntRange(1, MAX_DURATION_MS),
    default=DEFAULT_POLL_INTERVAL_MS,
    show_default=True,
    help="How long an idle worker waits before looking for work that other processes created.",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    callback=_queue_names,
    metavar="NAME",
    help="Claim only executions of this queue (repeatable). Default: the queues of the tasks "
    "APP registers (tasks without a queue are in 'default').",
)
@executor_options
@click.option(
    "--migrate/--no-migrate",
    default=True,
    show_default=True,
    help="Create or upgrade the schema before starting (safe with many workers starting at once).",
)
@click.option(
    "--listen/--no-listen",
    default=True,
    show_default=True,
    help="PostgreSQL: LISTEN for work other processes enqueue (one extra session). "
    "--no-listen polls only (every --poll-interval-ms), for PgBouncer in transaction mode.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS, case_sensitive=False),
    default="text",
    show_default=True,
    help="text: one readable line per event. json: one JSON object per line (time, level, "
    "logger, message, pid, and execution_id, task_id, attempt, status for an execution's "
    "events and for anything logged while it runs; exc_info holds a traceback).",
)
def worker(
    app: str,
    db: str,
    table: str,
    concurrency: int,
    app_dir: Path,
    poll_interval_ms: int,
    migrate: bool,
    log_level: str,
    log_format: str,
    expire_ms: int,
    max_lease_expiries: int,
    max_serialized_size_bytes: int,
    retention: timedelta | None,
    listen: bool,
    queues: tuple[str, ...],
) -> None:
    """Run the tasks registered by APP until SIGINT or SIGTERM.

    APP is module:function. The worker creates an executor on --db and calls
    function(executor), which registers the tasks; then it runs every execution of those tasks
    that any process enqueues, until stopped. Start as many workers as you like, on as many
    machines as you like, against one PostgreSQL database (or one SQLite file on one machine).

    Every worker sharing a table must register every task that is enqueued there: a worker that
    claims an execution of a task it does not know fails it.

    \b
    Example (myapp/tasks.py defines `def register(executor): ...`):
      durable-execution worker myapp.tasks:register --db postgresql://app@db/app --concurrency 50

    The first SIGINT/SIGTERM lets running executions finish; a second one stops at once (their
    leases expire and another worker retries them).
    """
    configure_logging(log_level, log_format.lower())
    register = load_app(app, app_dir)
    config = WorkerConfig(
        target=Target(db, table),
        app=app,
        concurrency=concurrency,
        poll_interval_ms=poll_interval_ms,
        migrate=migrate,
        tuning=tuning(expire_ms, max_lease_expiries, max_serialized_size_bytes, retention),
        listen=listen,
        queues=queues,
    )
    run(config.target, "the worker", run_worker(config, register))
