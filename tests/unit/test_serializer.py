"""The default serializer round-trips every supported type and refuses the rest clearly."""

from __future__ import annotations

import json
import math
from collections import OrderedDict, namedtuple
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum, Flag, IntEnum, StrEnum
from typing import NamedTuple
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable_execution.errors import DurableExecutionError
from durable_execution.model import (
    ChildTaskError,
    ExecutionErrorInfo,
    ParentTaskRef,
    RetryOptions,
    TaskRef,
)
from durable_execution.payloads import ChildTaskOutput, FinalizeTaskInput, ParentTaskOutput
from durable_execution.serializer import TAG, CheckedSerializer, JsonSerializer

SERIALIZER = JsonSerializer()


def round_trip(value: object) -> object:
    return SERIALIZER.deserialize(SERIALIZER.serialize(value))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -(2**70),
        1.5,
        "",
        "héllo ✓",
        [],
        {},
        [1, "a", None, [2.5, {"k": [True]}]],
        {"nested": {"list": [1, 2], "none": None}},
        datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2024, 5, 6, 7, 8, 9),  # naive stays naive
        date(2024, 2, 29),
        time(23, 59, 1, 5),
        timedelta(days=-1, seconds=5, microseconds=7),
        Decimal("3.14159265358979323846264338327950288"),
        Decimal("-1E+30"),
        UUID("12345678-1234-5678-1234-567812345678"),
        b"\x00\xffbinary",
        bytearray(b"abc"),
        (),
        (1, (2, (3,))),
        {1, 2, 3},
        frozenset({"a", "b"}),
        {(1, 2): "tuple key", 3: "int key", None: "none key"},
        {TAG: "user data that looks like a tag", "v": 1},
        [{TAG: {TAG: "nested"}}],
    ],
    ids=repr,
)
def test_round_trips(value: object) -> None:
    result = round_trip(value)
    assert result == value
    assert type(result) is type(value)


def test_non_finite_floats_round_trip() -> None:
    values = round_trip([math.inf, -math.inf, math.nan])
    assert isinstance(values, list)
    assert values[0] == math.inf
    assert values[1] == -math.inf
    assert math.isnan(values[2])


def test_library_types_round_trip() -> None:
    error = ExecutionErrorInfo(error_type="timed_out", message="slow", is_retryable=True)
    value = FinalizeTaskInput(
        input={"name": "world"},
        output=ParentTaskOutput(
            output=(1, 2),
            children_tasks_outputs=[
                ChildTaskOutput(index=1, task_id="b", execution_id="te_2", output={3}),
                ChildTaskOutput(index=0, task_id="a", execution_id="te_1", output=None),
            ],
        ),
    )
    assert round_trip(value) == value
    others = [
        TaskRef(task_id="t", execution_id="te_1"),
        ParentTaskRef(task_id="p", execution_id="te_2", is_finalize_task=True),
        ChildTaskError(index=3, task_id="c", execution_id="te_3", error=error),
        RetryOptions(max_attempts=2, base_delay_ms=10, delay_multiplier=1.5, max_delay_ms=100),
    ]
    assert round_trip(others) == others


def test_children_outputs_are_kept_sorted_by_index() -> None:
    output = ParentTaskOutput(
        output=None,
        children_tasks_outputs=[
            ChildTaskOutput(index=1, task_id="b", execution_id="te_2", output=2),
            ChildTaskOutput(index=0, task_id="a", execution_id="te_1", output=1),
        ],
    )
    assert [child.index for child in output.children_tasks_outputs] == [0, 1]
    assert isinstance(output.children_tasks_outputs, tuple)


def test_text_is_always_storable_as_utf8() -> None:
    text = SERIALIZER.serialize(["\ud800 lone surrogate", "é"])
    text.encode("utf-8")
    assert SERIALIZER.deserialize(text) == ["\ud800 lone surrogate", "é"]
    assert "é" in SERIALIZER.serialize("é")  # non-ASCII stays readable when it can


def test_plain_json_is_written_untagged() -> None:
    text = SERIALIZER.serialize({"a": [1, 2.5, "x", None, True]})
    assert json.loads(text) == {"a": [1, 2.5, "x", None, True]}
    assert TAG not in text


class _Opaque:
    pass


@pytest.mark.parametrize("value", [_Opaque(), [1, {"k": object()}], {1: _Opaque()}])
def test_unsupported_types_are_refused_by_name(value: object) -> None:
    with pytest.raises(TypeError, match="is not serializable"):
        SERIALIZER.serialize(value)


class _Color(StrEnum):
    RED = "red"


class _Level(IntEnum):
    HIGH = 3


class _Shape(Enum):
    SQUARE = 4


class _Perm(Flag):
    READ = 1


_Legacy = namedtuple("_Legacy", "a")  # the untyped kind is refused too


class _Pair(NamedTuple):
    left: int
    right: int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (_Color.RED, r"^_Color.RED is an enum member, .*\(it would come back as a plain str\)"),
        (_Level.HIGH, r"^_Level.HIGH is an enum member, .*\(it would come back as a plain int\)"),
        (_Shape.SQUARE, r"^_Shape.SQUARE is an enum member, which is not serializable\. Store"),
        (_Perm.READ, r"^_Perm.READ is an enum member"),
        ([1, {"k": _Color.RED}], r"enum member.* \(at \[1\]\['k'\]\)$"),
        ({_Level.HIGH: 1}, r"enum member.* \(at key <_Level.HIGH: 3>\)$"),
        (_Pair(1, 2), r"^_Pair is a named tuple, which is not serializable"),
        (_Legacy(1), r"^_Legacy is a named tuple"),
        (
            {"a": (1, {_Opaque()})},
            r"^Object of type _Opaque is not serializable \(at \['a'\]\[1\] item",
        ),
    ],
    ids=repr,
)
def test_values_that_would_change_type_are_refused(value: object, message: str) -> None:
    """Enum members and named tuples would come back as plain str/int/tuple: refused instead."""
    with pytest.raises(TypeError, match=message):
        SERIALIZER.serialize(value)


def test_other_builtin_subclasses_come_back_as_their_base() -> None:
    value = round_trip(OrderedDict(a=1))
    assert value == {"a": 1}
    assert type(value) is dict


@pytest.mark.parametrize(
    "text",
    [
        '{"$de": "no_such_tag", "v": 1}',
        '{"$de": "tuple", "v": 1, "extra": 2}',
        '{"$de": "bytes", "v": "***"}',
        '{"$de": "TaskRef", "v": {"unknown_field": 1}}',
        "not json",
    ],
)
def test_malformed_input_is_refused(text: str) -> None:
    with pytest.raises((ValueError, TypeError)):
        SERIALIZER.deserialize(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_round_trips(value: object) -> None:
    assert round_trip(value) == value


@given(st.dictionaries(st.sampled_from([TAG, "v", "x"]), st.integers()))
def test_dicts_using_the_tag_key_round_trip(value: dict[str, int]) -> None:
    assert round_trip(value) == value


class _Broken:
    def serialize(self, value: object) -> str:
        raise RuntimeError("boom")

    def deserialize(self, data: str) -> object:
        raise RuntimeError("bang")


class _Empty:
    def serialize(self, value: object) -> str:
        return ""

    def deserialize(self, data: str) -> object:
        return data


def test_checked_serializer_wraps_failures_as_non_retryable() -> None:
    checked = CheckedSerializer(_Broken(), max_serialized_size_bytes=100)
    with pytest.raises(DurableExecutionError, match=r"^Error serializing value: boom$") as raised:
        checked.serialize(1)
    assert raised.value.is_retryable is False
    with pytest.raises(DurableExecutionError, match=r"^Error deserializing value: bang$") as raised:
        checked.deserialize("x")
    assert raised.value.is_retryable is False


def test_checked_serializer_refuses_empty_text() -> None:
    with pytest.raises(DurableExecutionError, match="non-empty string"):
        CheckedSerializer(_Empty(), max_serialized_size_bytes=100).serialize(1)


def test_size_limit_counts_utf8_bytes() -> None:
    checked = CheckedSerializer(JsonSerializer(), max_serialized_size_bytes=10)
    assert checked.serialize_limited("abcdefgh") == '"abcdefgh"'  # exactly 10 bytes
    with pytest.raises(DurableExecutionError, match="11 bytes, more than") as raised:
        checked.serialize_limited("abcdefghi")
    assert raised.value.is_retryable is False
    # 4 characters but 12 bytes of UTF-8 (plus quotes): over the limit.
    with pytest.raises(DurableExecutionError, match="14 bytes"):
        checked.serialize_limited("✓✓✓✓")
    # The unlimited variant is for values the library builds itself.
    assert checked.serialize("abcdefghijkl") == '"abcdefghijkl"'


def _nested(depth: int) -> object:
    value: object = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("depth", [199, 200])
def test_values_nested_up_to_the_limit_round_trip(depth: int) -> None:
    serializer = JsonSerializer()
    value = _nested(depth)
    assert serializer.deserialize(serializer.serialize(value)) == value


@pytest.mark.parametrize("depth", [201, 202, 5000])
def test_deeper_values_are_refused_naming_the_limit(depth: int) -> None:
    checked = CheckedSerializer(JsonSerializer(), 1 << 20)
    with pytest.raises(
        DurableExecutionError,
        match=r"^Error serializing value: the value is nested more than 200 levels deep",
    ):
        checked.serialize(_nested(depth))
