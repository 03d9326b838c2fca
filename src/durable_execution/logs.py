"""Log records an operator can filter by execution, and two helpers for a handler.

The executor logs each execution's life on its logger (``durable_execution`` unless given
another) with the execution's fields in ``extra``: ``execution_id``, ``task_id``, ``attempt``
(0 on the first run, as ``ctx.attempt``) and ``status`` (the status it was left in).

While an attempt runs, a context variable holds its ids. :class:`ExecutionLogFilter`, installed
on a *handler*, copies them into every record that handler sees, whoever logged it: so
``logging.getLogger("myapp").info(...)`` inside a task carries ``execution_id``, ``task_id`` and
``attempt`` too. The variable follows the attempt into the tasks it creates and into a sync run
function's thread (``asyncio.to_thread`` copies the context). (A filter on a *logger* would only
see that logger's own records, not those propagated from ``myapp``.)

:class:`JsonLogFormatter` writes a record as one JSON object per line; the worker's
``--log-format json`` uses both.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

# The structured fields of the executor's records, in the order a JSON line shows them.
EXECUTION_FIELDS: Final = ("execution_id", "task_id", "attempt", "status")


@dataclass(frozen=True, slots=True)
class _RunningAttempt:
    execution_id: str
    task_id: str
    attempt: int


_current_attempt: ContextVar[_RunningAttempt | None] = ContextVar(
    "durable_execution_attempt", default=None
)


def enter_attempt(execution_id: str, task_id: str, attempt: int) -> None:
    """Mark the current context (one attempt's own asyncio task) as running that attempt."""
    _current_attempt.set(_RunningAttempt(execution_id, task_id, attempt))


def execution_extra(
    execution_id: str, task_id: str, attempt: int, status: str, **more: object
) -> dict[str, object]:
    """The ``extra`` of a record about one execution."""
    return {
        "execution_id": execution_id,
        "task_id": task_id,
        "attempt": attempt,
        "status": status,
        **more,
    }


class ExecutionLogFilter(logging.Filter):
    """Adds ``execution_id``, ``task_id`` and ``attempt`` to records logged inside an attempt.

    Install it on a handler (``handler.addFilter(ExecutionLogFilter())``). It never drops a
    record, and never overwrites fields a record already has (the executor's own records carry
    their execution's fields in ``extra``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        attempt = _current_attempt.get()
        if attempt is not None and not hasattr(record, "execution_id"):
            record.execution_id = attempt.execution_id
            record.task_id = attempt.task_id
            record.attempt = attempt.attempt
        return True


# Every attribute a LogRecord has without ``extra`` (plus the formatter's own ``message``):
# anything else on a record came from ``extra`` or a filter and is written as a field.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``,
    ``message``, ``pid``, the execution's fields when the record has them, any other ``extra``
    field, and ``exc_info`` (the formatted traceback) when the record carries an exception.

    A value JSON cannot represent is written as its ``str``; a line never spans lines (newlines
    in a message or traceback are escaped by JSON).
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in EXECUTION_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and name not in entry and not name.startswith("_"):
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class ExecutionTextFormatter(logging.Formatter):
    """The plain format, plus ``[execution ID of task T]`` after a message logged inside an
    attempt that does not already name its execution (the executor's own messages do)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        execution_id = getattr(record, "execution_id", None)
        if isinstance(execution_id, str) and execution_id not in record.message:
            text += f" [execution {execution_id} of task {getattr(record, 'task_id', '?')}]"
        return text
