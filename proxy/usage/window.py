"""The time window a usage query reads: ``from`` ≤ created_at < ``to``, UTC.

The ledger stores times as whole epoch milliseconds (``ledger.clock``) and
reads a window with an exclusive end. A default end of exactly "now" would
miss a call settled in the same millisecond as the query, so a default end
is now plus that resolution: every record written up to and including now
is in the window. A ``to`` the caller gives stays exclusive, as given.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from proxy.errors import bad_request

LEDGER_RESOLUTION = timedelta(milliseconds=1)
"""The ledger's time resolution (``ledger.clock.to_ms``)."""
DEFAULT_USAGE_SPAN = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class UsageWindow:
    start: datetime
    end: datetime


def through(now: datetime) -> datetime:
    """The exclusive end that takes in every record written up to and including ``now``."""
    return now + LEDGER_RESOLUTION


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is read as UTC (query strings rarely carry one)."""
    if moment is None or moment.tzinfo:
        return moment
    return moment.replace(tzinfo=UTC)


def _check_order(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start >= end:
        raise bad_request("'from' must be before 'to'.", param="from")


def usage_window(
    start: datetime | None,
    end: datetime | None,
    *,
    now: datetime,
    span: timedelta = DEFAULT_USAGE_SPAN,
) -> UsageWindow:
    """The window asked for; by default ``span`` back from the end, and the end is now."""
    until = _utc(end) or through(now)
    since = _utc(start) or until - span
    _check_order(since, until)
    return UsageWindow(since, until)


def open_window(
    start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The bounds asked for, each optional: no end reads up to the latest record."""
    since, until = _utc(start), _utc(end)
    _check_order(since, until)
    return since, until
