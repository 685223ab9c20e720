"""The meter: worst-case holds, 402/429/503 refusals, and every call ending exactly once."""

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from ledger import spus_to_units
from ledger.sqlite import SqliteLedger
from ledger.verify import verify
from pricing import (
    MAX_TOKEN_COUNT,
    TokenCounts,
    affordable_max_tokens,
    cost_pico_usd,
    units_for_cost,
    worst_case_units,
)
from proxy.call import metered_call
from proxy.call.meter import Meter
from proxy.call.policy import PolicySource
from proxy.errors import ApiError
from proxy.model_registry import ModelRegistry
from proxy.server.metrics import Metrics
from proxy.settings import ModelRoute
from tests.fakes.ledger import SwitchableLedger
from tests.unit.metering_support import ALICE, MODEL, POLICY, open_call

CAP = 3


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SwitchableLedger]:
    ledger = SwitchableLedger(SqliteLedger(tmp_path / "ledger.db"))
    await ledger.open()
    await ledger.create_account("org_a", free_grant_units=spus_to_units(Decimal(1)))
    try:
        yield ledger
        ledger.down = False
        _, violations = await verify(ledger)
        assert violations == []
    finally:
        await ledger.close()


@pytest.fixture
async def meter(store: SwitchableLedger) -> AsyncIterator[Meter]:
    meter = Meter(
        store,
        PolicySource(POLICY),
        hold_ttl_s=60,
        call_deadline_s=600,
        max_in_flight_per_org=CAP,
        metrics=Metrics(),
    )
    yield meter
    await meter.drain(5)


async def test_hold_is_the_worst_case_and_settle_debits_the_actual_cost(
    meter: Meter, store: SwitchableLedger
) -> None:
    call = await open_call(meter)
    assert call.hold_units == worst_case_units(10, 100, MODEL.rates, POLICY)
    assert (await store.balance("org_a")).held_units == call.hold_units
    usage = TokenCounts(input_tokens=10, output_tokens=7)
    result = await call.settle(usage)
    expected = units_for_cost(cost_pico_usd(usage, MODEL.rates), POLICY)
    assert result.record.charged_units == expected
    assert result.record.details.cost_pico_usd == cost_pico_usd(usage, MODEL.rates)
    assert (await store.balance("org_a")).held_units == 0


async def test_detached_settle_returns_the_units_it_debits(
    meter: Meter, store: SwitchableLedger
) -> None:
    call = await open_call(meter)
    charged = call.settle_detached(TokenCounts(input_tokens=10, output_tokens=3), status="ok")
    await meter.drain(5)
    [record] = await store.usage_records("org_a")
    assert record.charged_units == charged
    assert meter.in_flight == 0


async def test_insufficient_credit_is_402_with_the_largest_affordable_max_tokens(
    meter: Meter, store: SwitchableLedger
) -> None:
    with pytest.raises(ApiError) as caught:
        await open_call(meter, max_output_tokens=10_000_000)
    error = caught.value
    available = spus_to_units(Decimal(1))
    affordable = affordable_max_tokens(available, 10, MODEL.rates, POLICY)
    assert error.status == 402
    assert error.extra == {
        "limit_source": "org",
        "available_spus": "1",
        "needed_spus": str(
            Decimal(worst_case_units(10, 10_000_000, MODEL.rates, POLICY)) / 1_000_000
        ),
        "max_affordable_tokens": affordable,
    }
    assert meter.in_flight == 0
    call = await open_call(meter, max_output_tokens=affordable)
    await call.release()


async def test_calls_beyond_the_in_flight_cap_get_429_until_one_ends(meter: Meter) -> None:
    calls = [await open_call(meter) for _ in range(CAP)]
    with pytest.raises(ApiError) as caught:
        await open_call(meter)
    assert caught.value.status == 429
    await calls.pop().release()
    calls.append(await open_call(meter))
    for call in calls:
        await call.release()
    assert meter.in_flight == 0


async def test_ledger_outage_is_503_and_frees_the_in_flight_slot(
    meter: Meter, store: SwitchableLedger
) -> None:
    store.down = True
    for _ in range(CAP + 1):
        with pytest.raises(ApiError) as caught:
            await open_call(meter)
        assert caught.value.status == 503
    assert meter.in_flight == 0


async def test_a_call_cannot_end_twice(meter: Meter) -> None:
    call = await open_call(meter)
    await call.release()
    with pytest.raises(RuntimeError, match="ended twice"):
        await call.settle(TokenCounts(input_tokens=1, output_tokens=1))


async def test_a_settle_outlasts_a_ledger_outage_and_its_hold_stays_renewed_meanwhile(
    meter: Meter, store: SwitchableLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metered_call, "SETTLE_FIRST_BACKOFF_S", 0.01)
    call = await open_call(meter)
    store.down = True
    settling = asyncio.create_task(call.settle(TokenCounts(input_tokens=10, output_tokens=7)))
    await asyncio.sleep(0.1)  # a few attempts fail meanwhile
    assert not settling.done()
    assert meter.renewal.live == 1
    store.down = False

    result = await settling

    assert [record.request_id for record in await store.usage_records("org_a")] == [call.request_id]
    assert result.record.charged_units > 0
    assert meter.renewal.live == 0


async def test_a_worst_case_beyond_what_one_ledger_operation_carries_is_402(
    meter: Meter, store: SwitchableLedger
) -> None:
    dear = ModelRoute(
        model_name="dear",
        provider_model="my-llm",
        input_cost_per_token=Decimal(1),
        output_cost_per_token=Decimal(1),
    )
    model = ModelRegistry([dear], include_demo=False).get("dear")
    with pytest.raises(ApiError) as caught:
        await meter.open(
            ALICE,
            model,
            operation="chat.completions",
            source="openai",
            prompt_tokens=10,
            max_output_tokens=MAX_TOKEN_COUNT,
        )
    assert (caught.value.status, caught.value.code) == (402, "insufficient_credits")
    assert "beyond what any balance can cover" in caught.value.message
    assert meter.in_flight == 0
    assert (await store.balance("org_a")).held_units == 0
