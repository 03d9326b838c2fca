"""Turning task inputs and outputs into stored text and back.

:class:`JsonSerializer` (the default) writes plain JSON for JSON values and tags everything else
it knows as ``{"$de": <tag>, "v": <payload>}``: ``datetime``, ``date``, ``time``, ``timedelta``,
``Decimal``, ``UUID``, ``bytes``, ``tuple``, ``set``, ``frozenset``, non-finite floats, dicts whose
keys are not all strings, and the library's own value types. A user dict that happens to contain
the key ``"$de"`` is escaped the same way (as a tagged list of pairs), so decoding is unambiguous.
It never executes code (no pickle): decoding only builds the types listed here.

Subclasses of the built-in types (``OrderedDict``, ``StrEnum`` members…) are written as their
base type and come back as it. Anything else is refused with a ``TypeError`` naming the type.

:class:`CheckedSerializer` is what the executor really calls: it wraps any serializer so that every
failure becomes a non-retryable :class:`DurableExecutionError` and enforces a size limit.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Final, Protocol, TypeAlias
from uuid import UUID

from durable_execution.errors import DurableExecutionError
from durable_execution.model import (
    ChildTaskError,
    ExecutionErrorInfo,
    ParentTaskRef,
    RetryOptions,
    TaskRef,
)
from durable_execution.payloads import ChildTaskOutput, FinalizeTaskInput, ParentTaskOutput


class Serializer(Protocol):
    """Converts values to text and back. ``serialize`` must never return an empty string."""

    def serialize(self, value: object) -> str: ...

    def deserialize(self, data: str) -> object: ...


# What json.dumps accepts after encoding: plain JSON, built only from these.
_Json: TypeAlias = bool | int | float | str | list["_Json"] | dict[str, "_Json"] | None

TAG: Final = "$de"
_VALUE: Final = "v"

# The library's own frozen dataclasses, tagged by class name. Adding a type here is the only way
# to make the decoder build it.
_DATACLASSES: Final[dict[str, type]] = {
    cls.__name__: cls
    for cls in (
        TaskRef,
        ParentTaskRef,
        ExecutionErrorInfo,
        ChildTaskError,
        RetryOptions,
        ChildTaskOutput,
        ParentTaskOutput,
        FinalizeTaskInput,
    )
}


def _tagged(tag: str, payload: _Json) -> _Json:
    return {TAG: tag, _VALUE: payload}


# Deeper values are refused with a clear error, well before Python's recursion limit (about
# 500 levels here) turns into an opaque RecursionError, and so that whatever is stored can be
# read back from a deeper call stack. The library's own wrappers count as levels too.
MAX_NESTING_DEPTH: Final = 200


def _encode(value: object, depth: int = 0) -> _Json:
    # Order matters: bool before int, datetime before date (both are subclasses).
    if depth > MAX_NESTING_DEPTH:
        raise ValueError(
            f"the value is nested more than {MAX_NESTING_DEPTH} levels deep (lists, dicts, tuples,"
            " sets and the library's own value types count)"
        )
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return _tagged("float", repr(value))
    if isinstance(value, list):
        return [_encode(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return _encode_dict(value, depth + 1)
    if isinstance(value, tuple):
        return _tagged("tuple", [_encode(item, depth + 1) for item in value])
    if isinstance(value, frozenset):
        return _tagged("frozenset", [_encode(item, depth + 1) for item in value])
    if isinstance(value, set):
        return _tagged("set", [_encode(item, depth + 1) for item in value])
    if isinstance(value, datetime):
        return _tagged("datetime", value.isoformat())
    if isinstance(value, date):
        return _tagged("date", value.isoformat())
    if isinstance(value, time):
        return _tagged("time", value.isoformat())
    if isinstance(value, timedelta):
        return _tagged("timedelta", [value.days, value.seconds, value.microseconds])
    if isinstance(value, Decimal):
        return _tagged("decimal", str(value))
    if isinstance(value, UUID):
        return _tagged("uuid", str(value))
    if isinstance(value, bytes | bytearray):
        return _tagged(
            "bytes" if isinstance(value, bytes) else "bytearray",
            base64.b64encode(value).decode("ascii"),
        )
    name = type(value).__name__
    if _DATACLASSES.get(name) is type(value):
        fields = {
            f.name: _encode(getattr(value, f.name), depth + 1)
            for f in dataclasses.fields(value)  # type: ignore[arg-type]
        }
        return _tagged(name, fields)
    raise TypeError(f"Object of type {type(value).__qualname__} is not serializable")


def _encode_dict(value: dict[object, object], depth: int) -> _Json:
    if TAG not in value and all(isinstance(key, str) for key in value):
        return {str(key): _encode(item, depth) for key, item in value.items()}
    # Non-string keys would be silently stringified by JSON, and a user key equal to the tag
    # would be mistaken for one: both are written as an explicit list of pairs.
    return _tagged(
        "dict", [[_encode(key, depth), _encode(item, depth)] for key, item in value.items()]
    )


def _decode_bytes(payload: object) -> bytes:
    if not isinstance(payload, str):
        raise TypeError("bytes payload must be a base64 string")
    return base64.b64decode(payload, validate=True)


def _decode_timedelta(payload: object) -> timedelta:
    if not (isinstance(payload, list) and len(payload) == 3):
        raise TypeError("timedelta payload must be [days, seconds, microseconds]")
    days, seconds, microseconds = payload
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _decode_dict(payload: object) -> dict[object, object]:
    if not isinstance(payload, list):
        raise TypeError("dict payload must be a list of pairs")
    result: dict[object, object] = {}
    for pair in payload:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise TypeError("dict payload must be a list of pairs")
        result[pair[0]] = pair[1]
    return result


def _decode_items(payload: object) -> list[object]:
    if not isinstance(payload, list):
        raise TypeError("collection payload must be a list")
    return payload


def _decode_str(payload: object) -> str:
    if not isinstance(payload, str):
        raise TypeError("payload must be a string")
    return payload


_DECODERS: Final[dict[str, Callable[[object], object]]] = {
    "float": lambda p: float(_decode_str(p)),
    "tuple": lambda p: tuple(_decode_items(p)),
    "set": lambda p: set(_decode_items(p)),
    "frozenset": lambda p: frozenset(_decode_items(p)),
    "dict": _decode_dict,
    "datetime": lambda p: datetime.fromisoformat(_decode_str(p)),
    "date": lambda p: date.fromisoformat(_decode_str(p)),
    "time": lambda p: time.fromisoformat(_decode_str(p)),
    "timedelta": _decode_timedelta,
    "decimal": lambda p: Decimal(_decode_str(p)),
    "uuid": lambda p: UUID(_decode_str(p)),
    "bytes": _decode_bytes,
    "bytearray": lambda p: bytearray(_decode_bytes(p)),
}


def _decode_object(obj: dict[str, object]) -> object:
    """``json.loads`` object hook: runs bottom-up, so payloads are already decoded."""
    if TAG not in obj:
        return obj
    tag = obj[TAG]
    if not isinstance(tag, str) or set(obj) != {TAG, _VALUE}:
        raise ValueError(f"malformed tagged value: {obj!r}")
    payload = obj[_VALUE]
    decoder = _DECODERS.get(tag)
    if decoder is not None:
        return decoder(payload)
    cls = _DATACLASSES.get(tag)
    if cls is None:
        raise ValueError(f"unknown tag {tag!r}")
    if not isinstance(payload, dict):
        raise TypeError(f"{tag} payload must be an object")
    return cls(**payload)


class JsonSerializer:
    """The default serializer: compact JSON with tags for non-JSON types (see module docs)."""

    def serialize(self, value: object) -> str:
        encoded = _encode(value)
        text = json.dumps(encoded, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                # Lone surrogates cannot be stored as UTF-8 text; JSON escapes keep them.
                text = json.dumps(encoded, allow_nan=False, separators=(",", ":"))
        return text

    def deserialize(self, data: str) -> object:
        return json.loads(data, object_hook=_decode_object)


class CheckedSerializer:
    """Wraps a serializer: failures become non-retryable errors, and sizes are capped.

    The size limit (UTF-8 bytes of the serialized text) applies to values that come from users —
    task inputs and run outputs — through :meth:`serialize_limited`.
    """

    def __init__(self, serializer: Serializer, max_serialized_size_bytes: int) -> None:
        self._serializer = serializer
        self.max_serialized_size_bytes = max_serialized_size_bytes

    def serialize(self, value: object) -> str:
        try:
            data = self._serializer.serialize(value)
        except Exception as error:
            raise DurableExecutionError(
                f"Error serializing value: {error}", is_retryable=False
            ) from error
        if not isinstance(data, str) or not data:
            raise DurableExecutionError(
                "Error serializing value: the serializer must return a non-empty string",
                is_retryable=False,
            )
        return data

    def serialize_limited(self, value: object) -> str:
        data = self.serialize(value)
        limit = self.max_serialized_size_bytes
        # len() is a lower bound of the UTF-8 size and at most a quarter of its upper bound:
        # only encode when the cheap bound cannot decide.
        if len(data) * 4 > limit:
            size = len(data.encode("utf-8"))
            if size > limit:
                raise DurableExecutionError(
                    f"Error serializing value: the serialized value is {size} bytes, more than"
                    f" max_serialized_size_bytes ({limit})",
                    is_retryable=False,
                )
        return data

    def deserialize(self, data: str) -> object:
        try:
            return self._serializer.deserialize(data)
        except Exception as error:
            raise DurableExecutionError(
                f"Error deserializing value: {error}", is_retryable=False
            ) from error
