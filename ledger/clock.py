"""Time as the ledger stores it: integer epoch milliseconds, UTC at the edges."""

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Returns epoch seconds; injected so tests can move time (hold expiry, rollovers)."""

system_clock: Clock = time.time


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
    return int(moment.timestamp() * 1000)


def from_ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def optional_from_ms(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else from_ms(epoch_ms)


def optional_to_ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_ms(moment)
