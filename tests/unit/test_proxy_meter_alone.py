"""The meter tells the SQLite ledger when a call is alone, so its writes skip the hand-off."""

import threading
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ledger import spus_to_units
from ledger.sqlite import SqliteLedger, operations
from pricing import TokenCounts
from proxy.errors import ApiError
from proxy.gateway import Gateway
from proxy.metering import Meter
from proxy.observability import Metrics
from proxy.settings import Settings
from tests.unit.metering_support import POLICY, open_call

USAGE = TokenCounts(input_tokens=10, output_tokens=3)
T = TypeVar("T")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteLedger]:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    await ledger.open()
    await ledger.create_account("org_a", free_grant_units=spus_to_units(Decimal(1)))
    try:
        yield ledger
    finally:
        await ledger.close()


@pytest.fixture
async def meter(store: SqliteLedger) -> AsyncIterator[Meter]:
    meter = Meter(store, POLICY, hold_ttl_s=60, max_in_flight_per_org=8, metrics=Metrics())
    yield meter
    await meter.drain(5)


async def test_a_lone_call_is_alone_from_its_hold_to_its_settlement(meter: Meter) -> None:
    assert meter.alone()
    call = await open_call(meter)
    assert meter.alone()
    await call.settle(USAGE)
    assert meter.alone()


async def test_overlapping_calls_are_not_alone_until_their_endings_are_written(
    meter: Meter,
) -> None:
    first = await open_call(meter)
    second = await open_call(meter)
    assert not meter.alone()
    first.settle_detached(USAGE)
    assert not meter.alone()
    await meter.drain(5)
    assert meter.alone()
    await second.release()
    assert meter.alone()


async def test_a_refused_hold_leaves_the_meter_alone(meter: Meter) -> None:
    with pytest.raises(ApiError):
        await open_call(meter, max_output_tokens=10**9)
    other = await open_call(meter)
    assert meter.alone()
    await other.settle(USAGE)


async def test_the_gateway_lets_a_lone_calls_writes_commit_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []

    def on_thread(operation: Callable[..., T]) -> Callable[..., T]:
        def noted(*args: Any, **kwargs: Any) -> T:
            threads.append(threading.current_thread().name)
            return operation(*args, **kwargs)

        return noted

    monkeypatch.setattr(operations, "hold", on_thread(operations.hold))
    monkeypatch.setattr(operations, "settle", on_thread(operations.settle))
    store = SqliteLedger(tmp_path / "ledger.db")
    gateway = Gateway.build(Settings(demo_model=False), store)
    await store.open()
    try:
        await store.create_account("org_a", free_grant_units=spus_to_units(Decimal(1)))
        call = await open_call(gateway.meter)
        await call.settle(USAGE)
    finally:
        await store.close()
    assert threads == [threading.current_thread().name] * 2
