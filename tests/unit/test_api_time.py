"""Times the API accepts: UTC, and within a range where the gateway's date arithmetic holds."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from proxy.api_time import EARLIEST, LATEST, ApiTime

TIMES = TypeAdapter(ApiTime)


def test_a_time_without_a_zone_is_read_as_utc() -> None:
    assert TIMES.validate_python("2026-03-01T12:00:00") == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_zoned_time_keeps_its_zone() -> None:
    eastern = timezone(timedelta(hours=-5))
    moment = TIMES.validate_python("2026-03-01T12:00:00-05:00")
    assert moment == datetime(2026, 3, 1, 12, tzinfo=eastern)


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00", "9999-12-31T23:59:59", "1969-12-31T23:59:59Z"]
)
def test_a_time_where_a_window_or_period_would_overflow_is_refused(moment: str) -> None:
    with pytest.raises(ValidationError, match="must be between"):
        TIMES.validate_python(moment)


def test_the_range_leaves_room_for_a_window_back_and_a_period_ahead() -> None:
    assert EARLIEST - timedelta(days=366) > datetime.min.replace(tzinfo=UTC)
    assert LATEST + timedelta(days=366) < datetime.max.replace(tzinfo=UTC)
