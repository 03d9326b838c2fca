"""Identifiers: generated execution ids and the rules user-chosen task ids must follow."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from typing import Final

from durable_execution.errors import DurableExecutionError, DurableExecutionNotFoundError

# 56 characters: digits and letters without the easily confused I, L, O, i, l, o.
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz"
EXECUTION_ID_PREFIX: Final = "te_"
SEQUENTIAL_TASK_ID_PREFIX: Final = "st_"
MAX_ID_LENGTH: Final = 255

_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_]+")


# Rejection sampling done by bytes.translate: each random byte becomes ALPHABET[byte & 63] when
# its low 6 bits (uniform over 0..63) are below 56, and is dropped otherwise.
_TRANSLATION: Final = bytes(
    ord(ALPHABET[byte & 63]) if byte & 63 < len(ALPHABET) else 0 for byte in range(256)
)
_REJECTED: Final = bytes(byte for byte in range(256) if byte & 63 >= len(ALPHABET))


def random_id(length: int) -> str:
    """``length`` characters from :data:`ALPHABET`, cryptographically random and unbiased."""
    kept = b""
    while len(kept) < length:
        # 7 in 8 bytes are kept: a quarter more than needed almost always suffices at once.
        kept += secrets.token_bytes(length + length // 4 + 2).translate(_TRANSLATION, _REJECTED)
    return kept[:length].decode("ascii")


def generate_execution_id() -> str:
    return EXECUTION_ID_PREFIX + random_id(24)


def sequential_task_id(step_ids: Sequence[str]) -> str:
    """The id of an unnamed sequential chain of tasks ``step_ids``: ``st_`` and 16 hex digits.

    Derived from the steps (never random) so that every process registering the same chain
    names it alike: an execution enqueued by one process is found by a worker in another, and
    after a crash by its successor. 64 bits of SHA-256 make an accidental clash between two
    chains of one application negligible, and registration refuses one anyway.
    """
    # Ids hold only [A-Za-z0-9_], so a comma cannot make two different step lists look alike.
    digest = hashlib.sha256(",".join(step_ids).encode()).hexdigest()
    return SEQUENTIAL_TASK_ID_PREFIX + digest[:16]


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
