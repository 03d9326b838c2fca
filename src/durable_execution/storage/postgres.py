"""The PostgreSQL storage: executions in one table, shared by many executor processes.

How it works:

* A ``psycopg_pool.AsyncConnectionPool``; each transaction borrows one connection for its whole
  life (``async with pool.connection() as conn, conn.transaction()``), so transactions of one
  process run truly in parallel, up to the pool size.
* READ COMMITTED (set on every pooled connection, whatever the server's default): claims use
  ``FOR UPDATE SKIP LOCKED`` so concurrent executors take disjoint rows without waiting, and the
  version guard of an update is re-checked by PostgreSQL against the latest committed row.
* Cross-process wake-ups: once a transaction that inserted executions ready to run now has
  committed, a ``pg_notify`` on the table's channel follows, debounced per storage (see
  :mod:`._pg_notices` for why not inside the transaction); :meth:`PostgresDurableStorage.
  watch_ready` listens on it over a connection of its own (see :mod:`._pg_listener`), unless
  the storage was opened with ``listen=False`` (poll-only, for PgBouncer's transaction mode).
* Every statement is a generated query (``generated/postgresql``, psycopg raw cursors); records
  become rows through the shared :mod:`.conversion` layer (``jsonb`` and ``timestamptz``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Self, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import AdaptersMap
from psycopg.types.array import ListBinaryDumper
from psycopg_pool import PoolClosed

from durable_execution.generated import postgresql as pg
from durable_execution.model import TaskExecutionStatus
from durable_execution.storage import (
    _pg_claims,
    _pg_listener,
    _pg_notices,
    _pg_pool,
    claiming,
    conversion,
    inspection,
    migrate,
)
from durable_execution.storage import (
    _pg_rows as _rows,
)
from durable_execution.storage._pg_closing import PostgresClosingMethods
from durable_execution.storage._pg_errors import duplicate_ids, missing_table_error
from durable_execution.storage._pg_schedules import PostgresScheduleMethods, list_schedules
from durable_execution.storage._pg_timestamps import register_tolerant_timestamps
from durable_execution.storage.errors import (
    DuplicateExecutionIdError,
    MalformedRowError,
    StorageClosedError,
    StorageError,
)
from durable_execution.storage.masking import mask_password, scrub
from durable_execution.storage.types import (
    ClaimedTaskExecutions,
    DurableStorageTx,
    HeldLease,
    PruneCursor,
    PrunedBatch,
    ScheduleListing,
    TaskExecutionRecord,
    TaskExecutionUpdate,
    WhereByExecutionIds,
)

_Connection = _pg_pool.Connection
_T = TypeVar("_T")

DEFAULT_POOL_MIN_SIZE: Final = 4  # psycopg_pool's own default: the executor's loops start at once
DEFAULT_POOL_MAX_SIZE: Final = 10
DEFAULT_CONNECT_TIMEOUT_S: Final = 30.0


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime ({moment!r}); timestamps must be aware")
    return moment


# Before every stored time: a prune walk's cursor before its first batch.
_NO_CURSOR_TIME: Final = datetime(1, 1, 2, tzinfo=UTC)


def ready_now(executions: Sequence[TaskExecutionRecord]) -> bool:
    """Whether an insert stored work claimable now (worth waking other processes for).

    Work that starts later is left to polling: a notice now would find nothing to claim. The
    clock is this process's, as the claims' ``now`` is the executor's; untruncated (not
    ``clock.now()``), so a start_at with sub-millisecond digits set this very millisecond still
    counts as due.
    """
    now = datetime.now(UTC)
    return any(e.status == "ready" and e.start_at <= now for e in executions)


class PostgresStorageTx(PostgresClosingMethods, PostgresScheduleMethods):
    """One transaction of a :class:`PostgresDurableStorage`, on one pooled connection."""

    def __init__(
        self,
        conn: _Connection,
        queries: pg.AsyncQueries,
        poison: claiming.PoisonSeen,
        single_statement: bool = False,
    ) -> None:
        self._conn = conn
        self._statements = _pg_pool.StatementBudget(single_statement)  # see single_statement()
        self._poison = poison
        self._queries = queries
        # Whether this transaction stored work claimable now: the storage notifies after commit.
        self.made_ready = False
        self._refused_ids: list[str] | None = None  # set by an insert refused as duplicate

    def raise_if_refused(self) -> None:
        """A refused insert dooms the transaction (the contract: it stores nothing; a unique
        violation aborts it anyway): later calls and the end of the block raise the refusal again
        instead of failing obscurely or letting COMMIT turn silently into a rollback."""
        if self._refused_ids is not None:
            raise DuplicateExecutionIdError(self._refused_ids)

    def _before_statement(self) -> None:
        self.raise_if_refused()
        self._statements.spend()

    async def insert_task_executions(self, executions: Sequence[TaskExecutionRecord]) -> list[str]:
        self._before_statement()
        if not executions:
            return []
        rows = [conversion.columns_from_record(record) for record in executions]
        if any(row.idempotency_key is not None for row in rows):
            self._before_statement()  # its holders are read by a second statement
        ids = [row.execution_id for row in rows]
        repeated = [execution_id for execution_id, n in Counter(ids).items() if n > 1]
        # With keys, a repeated id is a duplicate only if both rows are stored: the statement
        # (which skips a row whose key is taken before checking its id) decides.
        if repeated and all(row.idempotency_key is None for row in rows):
            # Caught before the statement, but refused all the same (see raise_if_refused).
            self._refused_ids = repeated
            raise DuplicateExecutionIdError(repeated)
        try:
            resolved = await _rows.insert_rows(self._queries, self._conn, rows)
            if not self.made_ready:
                self.made_ready = ready_now(executions)
        except pg_errors.UniqueViolation as error:
            # The transaction is now aborted: nothing it did will be stored.
            self._refused_ids = duplicate_ids(error, ids)
            raise DuplicateExecutionIdError(self._refused_ids) from error
        return resolved

    async def get_task_executions(self, execution_ids: Sequence[str]) -> list[TaskExecutionRecord]:
        self._before_statement()
        if not execution_ids:
            return []
        rows = await self._queries.get_task_executions_by_ids(
            self._conn, execution_ids=list(dict.fromkeys(execution_ids))
        )
        return [conversion.record_from_columns(row) for row in rows]

    async def get_finished_task_execution_ids(self, execution_ids: Sequence[str]) -> list[str]:
        self._before_statement()
        if not execution_ids:
            return []
        return await self._queries.get_finished_task_execution_ids(
            self._conn, execution_ids=list(dict.fromkeys(execution_ids))
        )

    async def get_expired_task_executions(
        self, *, now: datetime, limit: int
    ) -> list[TaskExecutionRecord]:
        self._before_statement()
        rows = await self._queries.get_expired_task_executions(
            self._conn, now=_aware(now, "now"), row_limit=conversion.positive_limit(limit)
        )
        return [conversion.record_from_columns(row) for row in rows]

    async def claim_ready_task_executions(
        self,
        *,
        now: datetime,
        limit: int,
        lease_ms: int,
        queues: Sequence[str] | None = None,
    ) -> ClaimedTaskExecutions:
        """The claim (see ``DurableStorageTx``), one statement of a single-statement transaction:
        ``_pg_claims`` begins one of its own when it must hold concurrency keys locked."""
        self._before_statement()
        claiming.check_claim_arguments(now, limit, lease_ms, queues)
        if limit == 0 or (queues is not None and not queues):
            return ClaimedTaskExecutions(records=[], malformed=[])
        return await _pg_claims.claim_ready(
            self._conn,
            self._queries,
            self._poison,
            now=conversion.utc_ms(now, "now"),
            lease_ms=lease_ms,
            row_limit=min(limit, conversion.MAX_ROW_LIMIT),
            queues=queues,
        )

    async def renew_task_execution_leases(
        self, leases: Sequence[HeldLease], *, expires_at: datetime
    ) -> list[str]:
        """The batched lease renewal (see ``DurableStorageTx``): one statement,
        ids and versions as two parallel arrays."""
        self._before_statement()
        expires_at = conversion.renewal_expires_at(leases, expires_at)
        if not leases:
            return []
        return await self._queries.renew_task_execution_leases(
            self._conn,
            expires_at=expires_at,
            execution_ids=[lease.execution_id for lease in leases],
            versions=[lease.version for lease in leases],
        )

    async def update_task_executions_each(
        self, updates: Sequence[tuple[WhereByExecutionIds, TaskExecutionUpdate]]
    ) -> list[int]:
        """The batch of guarded updates (see ``DurableStorageTx``): one statement
        for the lot, unless an execution id comes up again (then one more per repeat)."""
        self._before_statement()
        counts = [0] * len(updates)
        batch = _rows.UpdateEachBatch()
        for index, where, changes in conversion.pending_updates(updates):
            execution_ids = list(dict.fromkeys(where.execution_ids))
            if batch.targets.intersection(execution_ids):
                self._before_statement()  # one more statement (refused before any is sent)
                # Sent first, so that this update sees its writes, as in a loop.
                await _rows.run_update_batch(self._queries, self._conn, batch, counts)
                batch = _rows.UpdateEachBatch()
            batch.add(index, where, execution_ids, changes)
        await _rows.run_update_batch(self._queries, self._conn, batch, counts)
        return counts

    async def prune_batch(
        self,
        *,
        finished_before: datetime,
        statuses: Sequence[TaskExecutionStatus],
        after: PruneCursor | None,
        limit: int,
        dry_run: bool,
    ) -> PrunedBatch:
        """Retention's batch step (see ``DurableStorageTx``): find, then delete or count."""
        self._before_statement()
        roots = await self._queries.get_prunable_roots(
            self._conn,
            finished_before=_aware(finished_before, "finished_before"),
            after_finished_at=_NO_CURSOR_TIME if after is None else after.finished_at,
            after_id=0 if after is None else after.row_id,
            statuses=statuses,
            row_limit=limit,
        )
        if not roots:
            return PrunedBatch(trees=0, executions_by_status={}, cursor=None)
        ids = [root.execution_id for root in roots]
        step = (
            self._queries.count_execution_trees if dry_run else self._queries.delete_execution_trees
        )
        counts = {
            inspection.counted_status(row.status): row.execution_count
            for row in await step(self._conn, root_execution_ids=ids)
        }
        last = roots[-1]
        # The query only returns roots with a finished_at; the type cannot say so.
        assert last.finished_at is not None
        cursor = PruneCursor(finished_at=last.finished_at, row_id=last.id)
        return PrunedBatch(trees=len(roots), executions_by_status=counts, cursor=cursor)

    async def try_lock_pruning(self) -> bool:
        """Automatic retention's lock (see ``DurableStorageTx``): an advisory lock per table."""
        self._before_statement()
        locked = await self._queries.try_lock_pruning(
            self._conn, lock_key=migrate.pruning_lock_key(self._queries.table)
        )
        return locked is True


async def _configure(conn: _Connection) -> None:
    """Every pooled connection: explicit transactions only, READ COMMITTED whatever the default,
    and lists sent as binary arrays.

    The batch statements (insert, batch update, id lists) pass one array per column. psycopg's
    default text array dumper quotes and escapes every element in Python, JSON text worst of all:
    30 arrays of 100 elements took 15 ms to dump as text and 1.1 ms as binary, which was most of
    the time of a 100-row insert. Every array parameter of the generated SQL carries an explicit
    cast (``@x::T[]``), so the element type psycopg picks for the binary array does not matter.
    """
    await conn.set_autocommit(True)
    await conn.set_isolation_level(psycopg.IsolationLevel.READ_COMMITTED)
    register_adapters(conn.adapters)


def register_adapters(adapters: AdaptersMap) -> None:
    """The adapters of every connection, async or sync: see :func:`_configure`."""
    adapters.register_dumper(list, ListBinaryDumper)
    register_tolerant_timestamps(adapters)


class PostgresDurableStorage:
    """Executions in a PostgreSQL table. Call :meth:`open` (or use ``async with``) before use.

    ``conninfo`` is a libpq URL or key/value string. ``pool_min_size``/``pool_max_size`` bound the
    connection pool, and so the number of transactions that run at once. ``table_name`` selects
    the table (validated; its indexes and migrations table are named after it). The schema is
    created or upgraded by :meth:`migrate` (``open_storage`` calls it unless told not to).
    ``listen=False`` opens no LISTEN session: executors find work enqueued by other processes by
    polling only (for PgBouncer in transaction mode, where a session's LISTEN is lost).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        table_name: str = pg.DEFAULT_TABLE,
        pool_min_size: int = DEFAULT_POOL_MIN_SIZE,
        pool_max_size: int = DEFAULT_POOL_MAX_SIZE,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        display_url: str | None = None,
        listen: bool = True,
    ) -> None:
        _pg_pool.check_pool_sizes(pool_min_size, pool_max_size)
        self.table_name = pg.validate_table_name(table_name)
        self.pool_min_size = pool_min_size
        self.pool_max_size = pool_max_size
        self.queries = pg.AsyncQueries(table_name)
        self._poison = claiming.PoisonSeen()
        self.ready_channel = _pg_listener.ready_channel(self.table_name)
        # How errors name the database: never with its password (open_storage passes a masked
        # URL; a caller constructing the storage directly may too).
        self._display = display_url if display_url is not None else "the PostgreSQL server"
        self._connect_timeout_s = connect_timeout_s
        self._conninfo = conninfo
        self.listen = listen
        self._notices = _pg_notices.ReadyNotices(self._send_ready_notice)
        self._pool = _pg_pool.ReconnectingPool(
            conninfo,
            min_size=pool_min_size,
            max_size=pool_max_size,
            open=False,
            configure=_configure,
            timeout=connect_timeout_s,
            reconnect_timeout=_pg_pool.RECONNECT_WINDOW_S,
            name="durable-execution",
        )

    def __repr__(self) -> str:
        return (
            f"<PostgresDurableStorage {mask_password(self._conninfo)!r} table={self.table_name!r}>"
        )

    async def open(self) -> None:
        """Check that the server answers, then open the pool (a clear error if it does not)."""
        try:
            probe = await psycopg.AsyncConnection.connect(
                self._conninfo, connect_timeout=max(1, round(self._connect_timeout_s))
            )
        except psycopg.OperationalError as error:
            # The driver may quote part of a malformed password (a host name it could not
            # resolve, a value it could not parse): scrubbed like the display form.
            reason = scrub(str(error), self._conninfo)
            raise StorageError(f"Cannot connect to {self._display}: {reason}") from None
        await probe.close()
        await self._pool.open(wait=True, timeout=self._connect_timeout_s)

    async def close(self) -> None:
        """Close every pooled connection (idempotent)."""
        await self._notices.close()
        await self._pool.close()

    async def __aenter__(self) -> Self:
        try:
            await self.open()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def transaction(self) -> AbstractAsyncContextManager[DurableStorageTx]:
        return self._tx(single_statement=False)

    def single_statement(self) -> AbstractAsyncContextManager[DurableStorageTx]:
        """One statement in autocommit, no BEGIN/COMMIT (the optional SingleStatementStorage)."""
        return self._tx(single_statement=True)

    @asynccontextmanager
    async def _tx(self, *, single_statement: bool) -> AsyncIterator[DurableStorageTx]:
        pool, size, single = self._pool, self.pool_max_size, single_statement
        try:
            async with pool.connection() if single else _pg_pool.begun(pool, size) as conn:
                tx = PostgresStorageTx(conn, self.queries, self._poison, single_statement=single)
                yield tx
                tx.raise_if_refused()  # inside the block: psycopg rolls back
            if tx.made_ready:
                self._notices.poke()  # committed: other processes may claim it now
        except PoolClosed:
            raise StorageClosedError("The PostgreSQL storage is closed") from None
        except pg_errors.UndefinedTable as error:
            raise missing_table_error(self.table_name, error) from None

    @asynccontextmanager
    async def watch_ready(self, on_ready: Callable[[], None]) -> AsyncIterator[None]:
        """Call ``on_ready`` whenever any process commits executions ready to run now (the
        optional ``ReadyWatchingStorage``). Each watch holds one connection outside the pool
        while it is open; see :mod:`._pg_listener` for reconnection and the channel's scope.
        With ``listen=False`` the watch opens nothing and never calls: the executor polls."""
        if not self.listen:
            yield
            return
        async with _pg_listener.watch_ready(
            self._conninfo,
            self.ready_channel,
            on_ready,
            display=self._display,
            connect_timeout_s=self._connect_timeout_s,
        ):
            yield

    async def _send_ready_notice(self) -> None:
        # Autocommit: 1 round trip, not 3; resent on another connection if this one was dead.
        await self._read(lambda conn: self.queries.notify_ready(conn, channel=self.ready_channel))

    async def migrate(self) -> list[int]:
        """Create or upgrade the schema; returns the migration versions applied now."""
        migrations = pg.migrations_for_table(self.table_name)
        async with self._pool.connection() as conn:
            return await migrate.migrate_postgres(conn, self.queries, migrations)

    # Inspection (the optional InspectableStorage queries); each borrows a pooled connection
    # and reads in autocommit, so no transaction is held open.

    async def _read(self, read: Callable[[_Connection], Awaitable[_T]]) -> _T:
        try:
            return await _pg_pool.read_on_live_connection(self._pool, self.pool_max_size, read)
        except PoolClosed:
            raise StorageClosedError("The PostgreSQL storage is closed") from None
        except pg_errors.UndefinedTable as error:
            raise missing_table_error(self.table_name, error) from None

    async def list_task_executions(
        self,
        *,
        statuses: Sequence[TaskExecutionStatus] | None = None,
        task_id: str | None = None,
        top_level_only: bool = False,
        limit: int,
        offset: int = 0,
        before_execution_id: str | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
    ) -> list[TaskExecutionRecord | MalformedRowError]:
        inspection.check_page(limit, offset)
        inspection.check_created_range(created_from, created_before)
        if limit == 0 or offset > conversion.MAX_ROW_LIMIT:
            return []
        rows = await self._read(
            lambda conn: self.queries.list_task_executions(
                conn,
                before_execution_id=before_execution_id,
                statuses=statuses,
                task_id=task_id,
                top_level_only=top_level_only,
                created_from=created_from,
                created_before=created_before,
                row_limit=min(limit, conversion.MAX_ROW_LIMIT),
                row_offset=offset,
            )
        )
        return inspection.each_decoded(rows, conversion.record_from_columns)

    async def count_task_executions_by_status(
        self, *, task_id: str | None = None, top_level_only: bool = False
    ) -> dict[TaskExecutionStatus, int]:
        rows = await self._read(
            lambda conn: self.queries.count_task_executions_by_status(
                conn, task_id=task_id, top_level_only=top_level_only
            )
        )
        return {inspection.counted_status(row.status): row.execution_count for row in rows}

    async def get_oldest_ready_task_execution(
        self, *, task_id: str | None = None
    ) -> TaskExecutionRecord | MalformedRowError | None:
        row = await self._read(
            lambda conn: self.queries.get_oldest_ready_task_execution(conn, task_id=task_id)
        )
        return None if row is None else inspection.decoded(row, conversion.record_from_columns)

    async def list_task_schedules(self) -> list[ScheduleListing]:
        return await self._read(lambda conn: list_schedules(self.queries, conn))
