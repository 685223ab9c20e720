"""An encoding loaded for an exact count is dropped by the sweep once a sweep interval passes
without one, and the next exact count loads it again and counts the same."""

import logging
import time

import httpx
import pytest

from pricing.tokens import drop_idle_encodings
from tests.e2e.support import CHAT_MODEL, Org, StartGateway

SWEEP_INTERVAL_S = 0.2
DROPPED = "dropped the encodings unused since the last sweep"


def count(url: str, org: Org) -> int:
    response = httpx.post(
        f"{url}/v1/messages/count_tokens",
        json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hello world"}]},
        headers={"authorization": f"Bearer {org.token}", "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    tokens: int = response.json()["input_tokens"]
    return tokens


def drops_seen(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if DROPPED in record.getMessage()]


def wait_for_drops(caplog: pytest.LogCaptureFixture, how_many: int) -> list[str]:
    deadline = time.monotonic() + 10 * SWEEP_INTERVAL_S + 5
    while len(drops_seen(caplog)) < how_many and time.monotonic() < deadline:
        time.sleep(SWEEP_INTERVAL_S / 4)
    return drops_seen(caplog)


def test_an_encoding_unused_for_a_sweep_is_dropped_and_loaded_again_by_the_next_count(
    start_gateway: StartGateway, org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    drop_idle_encodings(0)  # what earlier tests in this process loaded
    caplog.set_level(logging.INFO, logger="spu.gateway")
    gateway = start_gateway(sweep_interval_s=SWEEP_INTERVAL_S)
    first = count(gateway.url, org)
    assert wait_for_drops(caplog, 1) == [f"{DROPPED}: ['o200k_base']"]
    assert count(gateway.url, org) == first
    assert wait_for_drops(caplog, 2) == [f"{DROPPED}: ['o200k_base']"] * 2
