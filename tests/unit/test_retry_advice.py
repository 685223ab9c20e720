"""What a 429 or 503 tells the client to wait: when a slot frees, or as long as an outage has
lasted."""

import pytest

from proxy.call.in_flight import INITIAL_MEAN_CALL_S, MEAN_WEIGHT, InFlightCap
from proxy.errors import ApiError, error_response, retry_after_headers
from proxy.outages import MAX_RETRY_AFTER_S, MIN_RETRY_AFTER_S, Outage


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_an_outage_advises_as_long_as_it_has_lasted_within_bounds() -> None:
    clock = Clock()
    outage = Outage(clock)
    assert outage.retry_after_s() == MIN_RETRY_AFTER_S
    clock.now_s += 8
    assert outage.retry_after_s() == 8
    for _ in range(10):
        clock.now_s += 20
        advice = outage.retry_after_s()
    assert advice == MAX_RETRY_AFTER_S


def test_an_outage_with_no_failure_for_the_longest_advice_is_over() -> None:
    clock = Clock()
    outage = Outage(clock)
    outage.retry_after_s()
    clock.now_s += 20
    assert outage.retry_after_s() == 20
    clock.now_s += MAX_RETRY_AFTER_S + 0.5
    assert outage.retry_after_s() == MIN_RETRY_AFTER_S


def test_a_full_org_is_told_when_its_next_slot_should_free() -> None:
    cap = InFlightCap(limit=4)
    assert cap.retry_after_s() == INITIAL_MEAN_CALL_S / 4
    cap.call_ended(3.0)
    mean = INITIAL_MEAN_CALL_S + MEAN_WEIGHT * (3.0 - INITIAL_MEAN_CALL_S)
    assert cap.retry_after_s() == pytest.approx(mean / 4)
    for _ in range(500):
        cap.call_ended(10.0)
    assert cap.retry_after_s() == pytest.approx(10.0 / 4)


def test_retry_after_is_whole_seconds_at_least_one_and_exact_milliseconds() -> None:
    assert retry_after_headers(0.25) == {"retry-after": "1", "retry-after-ms": "250"}
    assert retry_after_headers(2.5) == {"retry-after": "3", "retry-after-ms": "2500"}


@pytest.mark.parametrize("status", [429, 503])
def test_a_429_or_503_is_never_answered_without_advice(status: int) -> None:
    with pytest.raises(AssertionError, match="when to retry"):
        error_response(ApiError(status, "busy"), "/v1/chat/completions")
    advised = error_response(ApiError(status, "busy", retry_after_s=2), "/v1/chat/completions")
    assert advised.headers["retry-after"] == "2"
