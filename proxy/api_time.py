"""Times the HTTP API accepts: UTC (a time without a zone is read as UTC), within a range.

The gateway works days and periods out from the times it is given (a usage
window reaches 30 days back, a plan's period up to a year ahead), and Python's
dates end at year 9999, so a time near either end would overflow there: a 400
naming the parameter is answered instead, for any time outside the range.
"""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _within_range(moment: datetime) -> datetime:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"must be between {EARLIEST.date()} and {LATEST.date()} (UTC)")
    return moment


ApiTime = Annotated[datetime, AfterValidator(_within_range)]
