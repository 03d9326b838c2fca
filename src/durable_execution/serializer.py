"""Turning task inputs and outputs into stored text and back.

:class:`JsonSerializer` (the default) writes plain JSON for JSON values and tags everything else
it knows as ``{"$de": <tag>, "v": <payload>}``: ``datetime``, ``date``, ``time``, ``timedelta``,
``Decimal``, ``UUID``, ``bytes``, ``tuple``, ``set``, ``frozenset``, non-finite floats, dicts whose
keys are not all strings, and the library's own value types. A user dict that happens to contain
the key ``"$de"`` is escaped the same way (as a tagged list of pairs), so decoding is unambiguous.
It never executes code (no pickle): decoding only builds the types listed here.

Enum members (``StrEnum``, ``IntEnum``… included) and named tuples are refused: they would come
back as a plain ``str``, ``int`` or ``tuple``, and code comparing ``value is Color.RED`` or reading
``point.x`` would break far from the cause. Store ``member.value`` (or a dict) instead. Other
subclasses of the built-in types (``OrderedDict``, ``defaultdict``…) are written as their base
type and come back as it. Anything else is refused with a ``TypeError`` naming the type and where
in the value it is (``at ['points'][0]``).

:class:`CheckedSerializer` is what the executor really calls: it wraps any serializer so that every
failure becomes a non-retryable :class:`DurableExecutionError` and enforces a size limit.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Final, Protocol, TypeAlias
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


# What JsonSerializer stores, as far as a type can say it: the bound of the input and output
# types of the tasks that executor.task(), parent_task() and validate_input() register, so that
# mypy refuses a dataclass, a pydantic model (without input_schema) or any other object the
# serializer would refuse at run time. Sequences and sets are checked element by element.
# Mappings are checked only at the top: a TypedDict is a Mapping[str, object] to mypy and to no
# narrower mapping type, and keys may be any stored type while Mapping's key is invariant (hence
# Any). What a type cannot say (enum members are str or int to mypy; mapping values) is
# refused by the serializer, at enqueue time for inputs.
Serializable: TypeAlias = (
    bool
    | int
    | float
    | str
    | bytes
    | bytearray
    | datetime
    | date
    | time
    | timedelta
    | Decimal
    | UUID
    | Sequence["Serializable"]
    | AbstractSet["Serializable"]
    | Mapping[Any, object]
    | TaskRef
    | ParentTaskRef
    | ExecutionErrorInfo
    | ChildTaskError
    | RetryOptions
    | ChildTaskOutput
    | ParentTaskOutput[object]
    | FinalizeTaskInput[object, object]
    | None
)

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
    if depth > MAX_NESTING_DEPTH:
        raise ValueError(
            f"the value is nested more than {MAX_NESTING_DEPTH} levels deep (lists, dicts, tuples,"
            " sets and the library's own value types count)"
        )
    # Exact JSON scalars first: the common case, and no enum or other subclass can be one.
    cls = type(value)
    if cls is str or cls is int or cls is bool or value is None:
        return value  # type: ignore[return-value]  # narrowed by the type checks above
    if isinstance(value, Enum):
        raise TypeError(
            f"{cls.__qualname__}.{value.name} is an enum member, which is not serializable"
            f"{_plain_base(value)}. Store its .value and rebuild it with {cls.__qualname__}(value)"
        )
    # Order matters: bool before int, datetime before date (both are subclasses).
    if isinstance(value, bool | str):
        return bool(value) if isinstance(value, bool) else str(value)
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
        if hasattr(cls, "_fields"):
            raise TypeError(
                f"{cls.__qualname__} is a named tuple, which is not serializable: it would come"
                " back as a plain tuple. Store its ._asdict() or a plain tuple instead"
            )
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


def _plain_base(value: Enum) -> str:
    """Why a StrEnum or IntEnum member is refused although it is a str or an int."""
    for base in (int, float, str):
        if isinstance(value, base):
            return f" (it would come back as a plain {base.__name__})"
    return ""


def _where(value: object) -> str:
    """Where in ``value`` encoding fails, as ``['key'][0]`` (empty when at the top).

    Only called once encoding has failed, so it may encode parts again to find the culprit.
    """
    path = ""
    while True:
        parts: list[tuple[str, object]] = []
        if isinstance(value, list | tuple) and not hasattr(type(value), "_fields"):
            parts = [(f"[{index}]", item) for index, item in enumerate(value)]
        elif isinstance(value, set | frozenset):
            parts = [(f" item {item!r}", item) for item in value]
        elif isinstance(value, dict):
            for key, item in value.items():
                parts += [(f" key {key!r}", key), (f"[{key!r}]", item)]
        else:
            return path
        for label, part in parts:
            try:
                _encode(part)
            except TypeError:
                path, value = path + label, part
                break
        else:
            return path


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
        try:
            encoded = _encode(value)
        except TypeError as error:
            where = _where(value)
            if not where:
                raise
            raise TypeError(f"{error} (at {where.strip()})") from None
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

    def serialize(self, value: object, what: str = "value") -> str:
        """``what`` names the value in errors: ``the input of task send_email``."""
        try:
            data = self._serializer.serialize(value)
        except Exception as error:
            raise DurableExecutionError(
                f"Error serializing {what}: {error}", is_retryable=False
            ) from error
        if not isinstance(data, str) or not data:
            raise DurableExecutionError(
                f"Error serializing {what}: the serializer must return a non-empty string",
                is_retryable=False,
            )
        return data

    def serialize_limited(self, value: object, what: str = "value") -> str:
        data = self.serialize(value, what)
        limit = self.max_serialized_size_bytes
        # len() is a lower bound of the UTF-8 size and at most a quarter of its upper bound:
        # only encode when the cheap bound cannot decide.
        if len(data) * 4 > limit:
            size = len(data.encode("utf-8"))
            if size > limit:
                raise DurableExecutionError(
                    f"Error serializing {what}: the serialized value is {size} bytes, more than"
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
