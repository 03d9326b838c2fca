"""The one clock every component reads.

Timestamps are truncated to whole milliseconds at the source, because that is what every backend
stores (SQLite keeps epoch milliseconds); a value read back then equals the value written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now() -> datetime:
    """The current time, timezone-aware UTC, truncated to the millisecond."""
    return truncate_to_ms(datetime.now(UTC))


def truncate_to_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def to_epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the Unix epoch; ``moment`` must be timezone-aware."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: timestamps must be timezone-aware")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)
