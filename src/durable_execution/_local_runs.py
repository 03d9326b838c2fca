"""The attempts running in this process, and how one is cancelled."""

from __future__ import annotations

import asyncio
from datetime import datetime


class LocalRun:
    """One attempt of one execution in this process.

    ``claimed_version`` is the fencing token: the row's version written by the claim. The attempt's
    result write is guarded by it, so once the row moved on (cancelled, or expired and claimed
    again) a late result is dropped instead of overwriting the newer state.

    ``lease_expires_at`` is the lease this executor last wrote for the row (by the claim, then by
    each renewal: see ``_leases``); ``storing_result`` is set once the user's code is done and
    only the result write remains, which its version guard makes safe at any time.
    """

    __slots__ = (
        "cancel_event",
        "cancel_requested",
        "claimed_version",
        "execution_id",
        "in_user_code",
        "lease_expires_at",
        "storing_result",
        "task",
    )

    def __init__(
        self, execution_id: str, claimed_version: int, lease_expires_at: datetime | None = None
    ) -> None:
        self.execution_id = execution_id
        self.claimed_version = claimed_version
        self.lease_expires_at = lease_expires_at
        self.storing_result = False
        self.cancel_event = asyncio.Event()
        self.cancel_requested = False
        self.in_user_code = False
        self.task: asyncio.Task[None] | None = None

    def request_cancel(self) -> None:
        """Stop the attempt: its row no longer needs (or accepts) a result.

        Only the user's code is interrupted; a result write already under way finishes and is
        refused by its guard, so a transaction is never torn by a cancellation.
        """
        if self.cancel_requested:
            return
        self.cancel_requested = True
        self.cancel_event.set()
        if self.in_user_code and self.task is not None:
            self.task.cancel()
