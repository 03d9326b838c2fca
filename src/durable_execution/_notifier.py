"""In-process wake-ups for handles waiting for an execution to finish.

Whenever this executor commits a finished status it calls :meth:`FinishedNotifier.notify`, so a
waiting handle re-reads at once instead of sleeping out its polling interval. Changes made by
other processes are still found by the handle's fallback polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class FinishedNotifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def subscribe(self, execution_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters.setdefault(execution_id, set()).add(event)
        return event

    def unsubscribe(self, execution_id: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(execution_id)
        if waiters is None:
            return
        waiters.discard(event)
        if not waiters:
            del self._waiters[execution_id]

    def notify(self, execution_ids: Iterable[str]) -> None:
        if not self._waiters:
            return
        for execution_id in execution_ids:
            for event in self._waiters.get(execution_id, ()):
                event.set()
