"""The exceptions the library raises and that task code may raise to steer retries.

Every error carries the facts that survive storage (see :class:`ExecutionErrorInfo`): a type
tag, a message, whether a retry could help and, for an exception the task's code raised, its
class and traceback. Anything else a task raises is treated as a retryable ``generic`` error (see
:func:`error_info_from_exception`).
"""

from __future__ import annotations

import traceback
from types import TracebackType
from typing import ClassVar, Final

from durable_execution.model import (
    MAX_ERROR_MESSAGE_BYTES,
    MAX_TRACEBACK_BYTES,
    ErrorType,
    ExecutionErrorInfo,
    TaskExecutionStatus,
)


class DurableExecutionError(Exception):
    """Base class. Retryable unless told otherwise, because most failures are transient."""

    error_type: ClassVar[ErrorType] = "generic"

    def __init__(self, message: str, is_retryable: bool = True, is_internal: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.is_retryable = is_retryable
        self.is_internal = is_internal

    def to_info(self) -> ExecutionErrorInfo:
        return ExecutionErrorInfo(
            error_type=self.error_type,
            message=storable_message(self.message),
            is_retryable=self.is_retryable,
            is_internal=self.is_internal,
        )


class DurableExecutionNotFoundError(DurableExecutionError):
    """An unknown task or execution. Never retryable: looking again will not make it appear."""

    error_type: ClassVar[ErrorType] = "not_found"

    def __init__(self, message: str) -> None:
        super().__init__(message, is_retryable=False)


class DurableExecutionTimedOutError(DurableExecutionError):
    """An attempt ran longer than its ``timeout_ms``. Retryable by default."""

    error_type: ClassVar[ErrorType] = "timed_out"

    def __init__(self, message: str = "Task timed out", is_retryable: bool = True) -> None:
        super().__init__(message, is_retryable=is_retryable)


class DurableExecutionCancelledError(DurableExecutionError):
    """The execution was cancelled. Never retryable: a cancel is a decision, not a glitch."""

    error_type: ClassVar[ErrorType] = "cancelled"

    def __init__(self, message: str = "Task cancelled") -> None:
        super().__init__(message, is_retryable=False)


def error_info_from_exception(
    error: BaseException, *, raised_by_task: bool = False
) -> ExecutionErrorInfo:
    """How an exception raised during an attempt is stored.

    A library error keeps its own classification and message; it is described as raised (its
    class and traceback) only if ``raised_by_task``: the task's code raised it to steer retries,
    and the traceback says where. Anything else becomes a retryable ``generic`` error, because the
    library cannot know that retrying a foreign failure is pointless, described as raised, with
    ``Type: text`` as its message. Never raises, whatever ``error``'s ``__str__`` does: a failure
    that cannot be described would leave its execution running until its lease expired.
    """
    if isinstance(error, DurableExecutionError):
        info = error.to_info()
        if not raised_by_task:
            return info
        return ExecutionErrorInfo(
            error_type=info.error_type,
            message=info.message,
            is_retryable=info.is_retryable,
            is_internal=info.is_internal,
            exception_type=exception_type_name(error),
            traceback=format_traceback(error),
        )
    name = exception_type_name(error)
    text = _safe_str(error)
    return ExecutionErrorInfo(
        error_type="generic",
        message=storable_message(f"{name}: {text}" if text else name),
        is_retryable=True,
        exception_type=name,
        traceback=format_traceback(error),
    )


def exception_type_name(error: BaseException) -> str:
    """``KeyError`` for a builtin, ``module.QualName`` for any other exception class."""
    cls = type(error)
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None) or cls.__name__
    # Storable like any text the library does not control (a class can be named anything).
    if not isinstance(module, str) or module == "builtins":
        return storable_message(str(name))
    return storable_message(f"{module}.{name}")


# What a traceback shows instead of the text of an exception whose __str__ raised.
_STR_FAILED: Final = "<exception str() failed>"


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return _STR_FAILED


# Frames of these modules lead into the task's code (the runner, asyncio, the thread pool): the
# stored traceback starts at the first frame of the task's own code.
_PLUMBING_MODULES: Final = frozenset({"durable_execution._runner", "durable_execution._registry"})
_PLUMBING_PACKAGES: Final = ("asyncio.", "concurrent.futures.", "threading")


def _is_plumbing(tb: TracebackType) -> bool:
    module = tb.tb_frame.f_globals.get("__name__")
    if not isinstance(module, str):
        return False
    return module in _PLUMBING_MODULES or module.startswith(_PLUMBING_PACKAGES)


def _without_plumbing(tb: TracebackType | None) -> TracebackType | None:
    first = tb
    while first is not None and _is_plumbing(first):
        first = first.tb_next
    # A traceback made only of plumbing (an error of the runner itself) is kept whole.
    return first if first is not None else tb


def task_exc_info(
    error: BaseException,
) -> tuple[type[BaseException], BaseException, TracebackType | None]:
    """``exc_info`` to log ``error`` with the traceback that is stored (from the task's code)."""
    return type(error), error, _without_plumbing(error.__traceback__)


def format_traceback(error: BaseException) -> str:
    """The formatted traceback of ``error`` (with its causes), storable and bounded.

    Leading frames of the library and of asyncio are left out; the rest is
    :func:`bounded_traceback`. Never raises.
    """
    try:
        formatted = traceback.TracebackException(
            type(error), error, _without_plumbing(error.__traceback__)
        )
        text = "".join(formatted.format())
    except Exception:
        text = f"{exception_type_name(error)}: <traceback could not be formatted>\n"
    return bounded_traceback(_escape_unstorable(text))


# Room kept for the truncation marker (it is far shorter).
_MARKER_RESERVE: Final = 96
# The cut moves forward to the next line start only this far: a traceback whose last lines are
# huge (a long exception message) keeps their end rather than losing them whole.
_MAX_LINE_ALIGNMENT: Final = 1024


def bounded_traceback(text: str, limit: int = MAX_TRACEBACK_BYTES) -> str:
    """``text`` if its UTF-8 form fits in ``limit`` bytes; else its end, from a line start, after
    a first line saying how much was left out. The end is what matters: the raising frame and
    the exception itself."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    tail = data[len(data) - (limit - _MARKER_RESERVE) :].decode("utf-8", "ignore")
    newline = tail.find("\n", 0, _MAX_LINE_ALIGNMENT)
    if newline >= 0:
        tail = tail[newline + 1 :]
    dropped = len(data) - len(tail.encode("utf-8"))
    return f"[traceback truncated: its first {dropped} bytes are not stored]\n{tail}"


def storable_message(message: str, limit: int = MAX_ERROR_MESSAGE_BYTES) -> str:
    """``message`` as it is stored: what no backend can store escaped (see
    :func:`_escape_unstorable`), and at most ``limit`` bytes of its start, with a note saying how
    much was left out."""
    text = _escape_unstorable(message)
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    head = data[: limit - _MARKER_RESERVE].decode("utf-8", "ignore")
    dropped = len(data) - len(head.encode("utf-8"))
    return f"{head} [message truncated: its last {dropped} bytes are not stored]"


def _escape_unstorable(text: str) -> str:
    """``text`` with what no backend can store escaped: NUL (PostgreSQL text and jsonb refuse
    it) and lone surrogates (not valid UTF-8). Otherwise a task whose exception text holds one
    could never record its failure and would be re-run at every lease expiry."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def terminal_status_for(error: ExecutionErrorInfo) -> TaskExecutionStatus:
    """The finished status of an attempt that failed with ``error`` and will not be retried."""
    if error.error_type == "timed_out":
        return "timed_out"
    if error.error_type == "cancelled":
        return "cancelled"
    return "failed"


def executor_shutdown_error() -> DurableExecutionError:
    return DurableExecutionError("Executor shutdown", is_retryable=False)
