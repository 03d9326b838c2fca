"""How an exception becomes a stored error: its message, its class name and a bounded traceback."""

from __future__ import annotations

import asyncio

from durable_execution.errors import (
    DurableExecutionError,
    DurableExecutionTimedOutError,
    bounded_traceback,
    error_info_from_exception,
    exception_type_name,
)
from durable_execution.model import MAX_TRACEBACK_BYTES


class Outer:
    class InnerError(Exception):
        pass


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


def test_exception_type_names() -> None:
    assert exception_type_name(KeyError("sku")) == "KeyError"
    assert exception_type_name(asyncio.CancelledError()) == "asyncio.exceptions.CancelledError"
    assert exception_type_name(Outer.InnerError()) == f"{__name__}.Outer.InnerError"


def test_a_foreign_exception_is_described_as_raised() -> None:
    info = error_info_from_exception(_raised(KeyError("sku")))
    assert (info.error_type, info.message, info.is_retryable) == (
        "generic",
        "KeyError: 'sku'",
        True,
    )
    assert info.exception_type == "KeyError"
    assert info.traceback is not None
    assert info.traceback.endswith("KeyError: 'sku'\n")
    # An exception without text reads as its type alone.
    assert error_info_from_exception(ValueError()).message == "ValueError"


def test_an_exception_whose_str_raises_is_still_described() -> None:
    info = error_info_from_exception(_raised(UnprintableError()))
    name = f"{__name__}.UnprintableError"
    assert info.message == f"{name}: <exception str() failed>"
    assert info.exception_type == name
    assert info.traceback is not None
    assert info.traceback.endswith(f"{name}: <exception str() failed>\n")


def test_library_errors_keep_their_message_and_get_details_only_when_the_task_raised_them() -> None:
    made = error_info_from_exception(_raised(DurableExecutionTimedOutError()))
    assert (made.message, made.exception_type, made.traceback) == ("Task timed out", None, None)
    raised = error_info_from_exception(
        _raised(DurableExecutionError("bad input", is_retryable=False)), raised_by_task=True
    )
    assert (raised.message, raised.is_retryable) == ("bad input", False)
    assert raised.exception_type == "durable_execution.errors.DurableExecutionError"
    assert raised.traceback is not None
    assert raised.traceback.endswith("DurableExecutionError: bad input\n")


def test_a_short_traceback_is_kept_whole() -> None:
    text = "Traceback (most recent call last):\n  x\nKeyError: 'sku'\n"
    assert bounded_traceback(text) == text


def test_a_long_traceback_keeps_its_end_from_a_line_start() -> None:
    lines = [f"  frame {index} ✓ é\n" for index in range(5_000)]
    text = "".join(lines) + "KeyError: 'sku'\n"
    bounded = bounded_traceback(text)
    assert len(bounded.encode()) <= MAX_TRACEBACK_BYTES
    marker, first_kept, *_ = bounded.splitlines(keepends=True)
    dropped = len(text.encode()) - len(bounded.encode()) + len(marker.encode())
    assert marker == f"[traceback truncated: its first {dropped} bytes are not stored]\n"
    assert first_kept in lines  # a whole line
    assert text.endswith(bounded[len(marker) :])


def test_a_huge_last_line_keeps_its_end() -> None:
    text = "Traceback (most recent call last):\nValueError: " + "é" * 50_000 + " end\n"
    bounded = bounded_traceback(text)
    assert len(bounded.encode()) <= MAX_TRACEBACK_BYTES
    assert bounded.endswith("é end\n")
    assert "\ufffd" not in bounded  # no character cut in half


def test_what_no_backend_stores_is_escaped_in_the_traceback() -> None:
    info = error_info_from_exception(_raised(ValueError("nul \x00 surrogate \udc80")))
    assert info.traceback is not None
    assert "\x00" not in info.traceback
    info.traceback.encode("utf-8")  # valid UTF-8: no lone surrogate left
    assert info.traceback.endswith("ValueError: nul \\x00 surrogate \\udc80\n")
