"""The exceptions the library raises and that task code may raise to steer retries.

Every error carries the three facts that survive storage (see :class:`ExecutionErrorInfo`): a type
tag, a message and whether a retry could help. Anything else a task raises is treated as a
retryable ``generic`` error with the exception's message (see :func:`error_info_from_exception`).
"""

from __future__ import annotations

from typing import ClassVar

from durable_execution.model import ErrorType, ExecutionErrorInfo, TaskExecutionStatus


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


def error_info_from_exception(error: BaseException) -> ExecutionErrorInfo:
    """How an exception raised during an attempt is stored.

    Library errors keep their own classification; anything else becomes a retryable ``generic``
    error, because the library cannot know that retrying a foreign failure is pointless.
    """
    if isinstance(error, DurableExecutionError):
        return error.to_info()
    return ExecutionErrorInfo(
        error_type="generic",
        message=storable_message(str(error) or type(error).__name__),
        is_retryable=True,
    )


def storable_message(message: str) -> str:
    """``message`` with what no backend can store escaped: NUL (PostgreSQL text and jsonb refuse
    it) and lone surrogates (not valid UTF-8). Otherwise a task whose exception text holds one
    could never record its failure and would be re-run at every lease expiry."""
    if "\x00" in message:
        message = message.replace("\x00", "\\x00")
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def terminal_status_for(error: ExecutionErrorInfo) -> TaskExecutionStatus:
    """The finished status of an attempt that failed with ``error`` and will not be retried."""
    if error.error_type == "timed_out":
        return "timed_out"
    if error.error_type == "cancelled":
        return "cancelled"
    return "failed"


def executor_shutdown_error() -> DurableExecutionError:
    return DurableExecutionError("Executor shutdown", is_retryable=False)
