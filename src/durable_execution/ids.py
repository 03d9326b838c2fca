"""Identifiers: generated execution ids and the rules user-chosen task ids must follow."""

from __future__ import annotations

import re
import secrets
from typing import Final

from durable_execution.errors import DurableExecutionError, DurableExecutionNotFoundError

# 56 characters: digits and letters without the easily confused I, L, O, i, l, o.
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz"
EXECUTION_ID_PREFIX: Final = "te_"
SEQUENTIAL_TASK_ID_PREFIX: Final = "st_"
MAX_ID_LENGTH: Final = 255

_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_]+")


def random_id(length: int) -> str:
    """``length`` characters from :data:`ALPHABET`, cryptographically random and unbiased."""
    chars: list[str] = []
    while len(chars) < length:
        # Rejection sampling: the low 6 bits are uniform over 0..63; keep those below 56.
        for byte in secrets.token_bytes(length + length // 4 + 2):
            index = byte & 63
            if index < len(ALPHABET):
                chars.append(ALPHABET[index])
                if len(chars) == length:
                    break
    return "".join(chars)


def generate_execution_id() -> str:
    return EXECUTION_ID_PREFIX + random_id(24)


def generate_sequential_task_id() -> str:
    return SEQUENTIAL_TASK_ID_PREFIX + random_id(16)


def validate_id(value: str) -> None:
    """Raise a non-retryable error unless ``value`` is a usable task id."""
    if not isinstance(value, str) or not value:
        raise DurableExecutionError("Id cannot be empty", is_retryable=False)
    if len(value) > MAX_ID_LENGTH:
        raise DurableExecutionError(
            f"Id cannot be longer than {MAX_ID_LENGTH} characters", is_retryable=False
        )
    if _ID_PATTERN.fullmatch(value) is None:
        raise DurableExecutionError(
            "Id can only contain alphanumeric characters and underscores", is_retryable=False
        )


def check_execution_id(value: str) -> None:
    """Refuse, as not found, what cannot be an execution id (every one is generated, from
    :data:`ALPHABET` and ``_``), before a database sees it: a NUL character, for one, makes
    PostgreSQL fail the whole statement with an encoding error."""
    if not isinstance(value, str) or _ID_PATTERN.fullmatch(value) is None:
        raise DurableExecutionNotFoundError(
            f"Execution {value!r} not found: an execution id contains only letters, digits"
            " and underscores"
        )
