"""Execution ids and task id rules."""

from __future__ import annotations

import pytest

from durable_execution.errors import DurableExecutionError, DurableExecutionNotFoundError
from durable_execution.ids import (
    ALPHABET,
    check_execution_id,
    generate_execution_id,
    random_id,
    sequential_task_id,
    validate_id,
)


def test_alphabet_has_56_unambiguous_characters() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 56
    assert not set("ILOilo") & set(ALPHABET)


def test_execution_ids_have_the_prefix_and_24_alphabet_characters() -> None:
    ids = {generate_execution_id() for _ in range(2000)}
    assert len(ids) == 2000
    for execution_id in ids:
        assert execution_id.startswith("te_")
        assert len(execution_id) == 27
        assert set(execution_id[3:]) <= set(ALPHABET)


def test_sequential_task_ids_derive_from_the_steps() -> None:
    task_id = sequential_task_id(["extract", "transform", "load"])
    assert task_id.startswith("st_")
    assert len(task_id) == 19
    validate_id(task_id)
    # The same steps give the same id in every process; other steps or another order do not.
    assert sequential_task_id(("extract", "transform", "load")) == task_id
    others = {
        sequential_task_id(steps)
        for steps in (["load", "transform", "extract"], ["extract", "transform"], ["a_b", "c"])
    }
    assert task_id not in others
    assert sequential_task_id(["a", "b_c"]) != sequential_task_id(["a_b", "c"])


def test_random_ids_use_the_whole_alphabet() -> None:
    seen = set(random_id(20_000))
    assert seen == set(ALPHABET)


@pytest.mark.parametrize("value", ["valid_id", "A", "x" * 255, "a1_B2"])
def test_valid_ids(value: str) -> None:
    validate_id(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Id cannot be empty"),
        ("x" * 256, "Id cannot be longer than 255 characters"),
        ("invalid-id", "Id can only contain alphanumeric characters and underscores"),
        ("invalid id", "Id can only contain alphanumeric characters and underscores"),
        ("$invalid_id", "Id can only contain alphanumeric characters and underscores"),
        ("invalid_id ", "Id can only contain alphanumeric characters and underscores"),
        ("ünïcode", "Id can only contain alphanumeric characters and underscores"),
        ("line\n", "Id can only contain alphanumeric characters and underscores"),
    ],
)
def test_invalid_ids(value: str, message: str) -> None:
    with pytest.raises(DurableExecutionError) as raised:
        validate_id(value)
    assert str(raised.value) == message
    assert raised.value.is_retryable is False


@pytest.mark.parametrize("value", ["te_a\x00b", "", "te a", "te_é", 5])
def test_impossible_execution_ids_are_not_found_before_any_read(value: object) -> None:
    with pytest.raises(
        DurableExecutionNotFoundError, match=r"^Execution .* not found: an execution"
    ):
        check_execution_id(value)  # type: ignore[arg-type]


def test_generated_execution_ids_pass_the_check() -> None:
    check_execution_id(generate_execution_id())
