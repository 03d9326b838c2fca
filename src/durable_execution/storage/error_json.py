"""How an :class:`ExecutionErrorInfo` is stored: one JSON object, the same in every place.

An error is stored in the ``error`` column and nested in ``children_tasks_errors`` and
``finalize_task_error`` (JSON text on SQLite, ``jsonb`` on PostgreSQL). Its ``exception_type`` and
``traceback`` are keys of that object rather than columns of their own, on purpose:

* an error is one value wherever it is stored; columns would describe only the ``error`` column
  and leave the nested copies with another shape;
* no migration: a row written before these fields existed decodes with both ``None``, and an
  older executor sharing the table during an upgrade reads a new row (it looks up the keys it
  knows and ignores the rest), where a column would have to exist before any write;
* both dialects store it as is: a 16 KiB traceback is a JSON string well inside what SQLite's
  ``json_valid`` CHECK and ``jsonb`` accept, and ``storable_message`` already removed the NUL
  characters and lone surrogates neither accepts.

The keys are written only when set, so an error the library makes is stored exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeAlias, TypeGuard

from durable_execution.model import ERROR_TYPES, ErrorType, ExecutionErrorInfo
from durable_execution.storage.errors import MalformedRowError

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None

# Builds the error that names the row and column being decoded, from a problem's description.
Fail: TypeAlias = Callable[[str], MalformedRowError]

_ERROR_TYPES: Final = frozenset(ERROR_TYPES)
_OPTIONAL_TEXT_KEYS: Final = ("exception_type", "traceback")


def error_json(error: ExecutionErrorInfo) -> JsonValue:
    encoded: dict[str, JsonValue] = {
        "error_type": error.error_type,
        "message": error.message,
        "is_retryable": error.is_retryable,
        "is_internal": error.is_internal,
    }
    if error.exception_type is not None:
        encoded["exception_type"] = error.exception_type
    if error.traceback is not None:
        encoded["traceback"] = error.traceback
    return encoded


def error_from_json(value: JsonValue, fail: Fail) -> ExecutionErrorInfo:
    if not isinstance(value, dict):
        raise fail(f"expected a JSON object, got {describe(value)}")
    error_type = value.get("error_type")
    if not _is_error_type(error_type):
        raise fail(f"unknown error_type {error_type!r}")
    message = value.get("message")
    if not isinstance(message, str):
        raise fail(f"'message' must be a string, got {describe(message)}")
    is_retryable = value.get("is_retryable")
    if not isinstance(is_retryable, bool):
        raise fail(f"'is_retryable' must be a boolean, got {describe(is_retryable)}")
    is_internal = value.get("is_internal", False)
    if not isinstance(is_internal, bool):
        raise fail(f"'is_internal' must be a boolean, got {describe(is_internal)}")
    exception_type, traceback = (_optional_text(value, key, fail) for key in _OPTIONAL_TEXT_KEYS)
    return ExecutionErrorInfo(
        error_type=error_type,
        message=message,
        is_retryable=is_retryable,
        is_internal=is_internal,
        exception_type=exception_type,
        traceback=traceback,
    )


def _optional_text(obj: dict[str, JsonValue], key: str, fail: Fail) -> str | None:
    # Absent in rows written before the key existed; null is accepted alike.
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise fail(f"{key!r} must be a string, got {describe(value)}")
    return value


def _is_error_type(value: object) -> TypeGuard[ErrorType]:
    return value in _ERROR_TYPES


def describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
