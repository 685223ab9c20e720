"""The meter: worst-case holds, 402/429/503 refusals, and every call ending exactly once."""

import asyncio
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from ledger import KeyInUse, KeyUse, ReplyKey, spus_to_units
from ledger.checks import MAX_UNITS
from ledger.sqlite import SqliteLedger
from ledger.verify import verify
from pricing import (
    MAX_TOKEN_COUNT,
    PromptTokens,
    TokenCounts,
    affordable_max_tokens,
    cost_pico_usd,
    units_for_cost,
    worst_case_units,
)
from proxy.call import metered_call
from proxy.call.meter import Meter
from proxy.call.metered_call import Ending
from proxy.call.policy import PolicySource
from proxy.errors import ApiError
from proxy.model_registry import ModelRegistry, ServedModel
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


async def owing(counts: TokenCounts | None) -> TokenCounts | None:
    return counts


async def test_a_detached_ending_settles_what_is_owed(
    meter: Meter, store: SwitchableLedger
) -> None:
    call = await open_call(meter)
    usage = TokenCounts(input_tokens=10, output_tokens=3)
    call.end_detached(owing(usage), status=Ending.CLIENT_DISCONNECTED)
    await meter.drain(5)
    [record] = await store.usage_records("org_a")
    assert record.charged_units == units_for_cost(cost_pico_usd(usage, MODEL.rates), POLICY)
    assert record.details.status == "client_disconnected"
    assert meter.in_flight == 0


async def test_a_detached_ending_that_owes_nothing_releases_the_hold(
    meter: Meter, store: SwitchableLedger
) -> None:
    call = await open_call(meter)
    call.end_detached(owing(None))
    await meter.drain(5)
    assert await store.usage_records("org_a") == []
    assert (await store.balance("org_a")).held_units == 0
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


class CountedOnce:
    """An exact count that records the thread it ran on."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.threads: list[threading.Thread] = []

    def __call__(self) -> int:
        self.threads.append(threading.current_thread())
        return self.tokens


async def test_an_affordable_bound_is_held_without_counting_the_prompt(meter: Meter) -> None:
    count = CountedOnce(10)
    call = await open_call(meter, 100, prompt=PromptTokens(40, count))
    assert call.hold_units == worst_case_units(40, 100, MODEL.rates, POLICY)
    assert count.threads == []
    await call.release()


def output_tokens_between_the_holds(available: int, bound: int, exact: int) -> int:
    """A max_tokens at which the exact count's worst case fits ``available`` and the bound's not."""
    output = 1
    while worst_case_units(bound, output, MODEL.rates, POLICY) <= available:
        output += 1
    assert worst_case_units(exact, output, MODEL.rates, POLICY) <= available
    return output


async def test_a_refused_bound_is_counted_off_the_loop_and_held_at_the_exact_count(
    meter: Meter, store: SwitchableLedger
) -> None:
    available = spus_to_units(Decimal(1))
    count = CountedOnce(10)
    output = output_tokens_between_the_holds(available, 50_000, 10)
    call = await open_call(meter, output, prompt=PromptTokens(50_000, count))
    assert call.hold_units == worst_case_units(10, output, MODEL.rates, POLICY)
    assert (await store.balance("org_a")).held_units == call.hold_units
    assert len(count.threads) == 1
    assert count.threads[0] is not threading.current_thread()
    await call.release()


async def test_a_402_after_the_bound_is_refused_gives_the_exact_figures(meter: Meter) -> None:
    available = spus_to_units(Decimal(1))
    count = CountedOnce(10)
    with pytest.raises(ApiError) as caught:
        await open_call(meter, 10_000_000, prompt=PromptTokens(50_000, count))
    error = caught.value
    assert error.status == 402
    assert "(10 prompt tokens + up to 10000000 output tokens)" in error.message
    assert error.extra == {
        "limit_source": "org",
        "available_spus": "1",
        "needed_spus": str(
            Decimal(worst_case_units(10, 10_000_000, MODEL.rates, POLICY)) / 1_000_000
        ),
        "max_affordable_tokens": affordable_max_tokens(available, 10, MODEL.rates, POLICY),
    }
    assert len(count.threads) == 1
    assert meter.in_flight == 0


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
    model = priced_model(Decimal(1))
    count = CountedOnce(10)
    with pytest.raises(ApiError) as caught:
        await open_call(meter, MAX_TOKEN_COUNT, prompt=PromptTokens(10, count), model=model)
    assert (caught.value.status, caught.value.code) == (402, "insufficient_credits")
    assert "beyond what any balance can cover" in caught.value.message
    assert len(count.threads) == 1
    assert meter.in_flight == 0
    assert (await store.balance("org_a")).held_units == 0


def priced_model(usd_per_token: Decimal) -> ServedModel:
    route = ModelRoute(
        model_name="priced",
        provider_model="my-llm",
        input_cost_per_token=usd_per_token,
        output_cost_per_token=usd_per_token,
    )
    return ModelRegistry([route], include_demo=False).get("priced")


async def test_a_bound_beyond_what_one_ledger_operation_carries_is_held_at_the_exact_count(
    meter: Meter, store: SwitchableLedger
) -> None:
    model = priced_model(Decimal("0.0001"))
    bound = MAX_TOKEN_COUNT
    assert worst_case_units(bound, 10, model.rates, POLICY) > MAX_UNITS
    count = CountedOnce(10)
    call = await open_call(meter, 10, prompt=PromptTokens(bound, count), model=model)
    # 20 tokens at $0.0001, marked up 25%, at $0.01 an SPU: 0.25 SPU.
    assert call.hold_units == spus_to_units(Decimal("0.25"))
    assert (await store.balance("org_a")).held_units == call.hold_units
    assert len(count.threads) == 1
    await call.release()


KEY = ReplyKey("retry-1", "digest-of-the-request", 60)


async def test_the_exact_hold_claims_the_idempotency_key_when_the_bound_is_refused(
    meter: Meter,
) -> None:
    available = spus_to_units(Decimal(1))
    output = output_tokens_between_the_holds(available, 50_000, 10)
    call = await open_call(
        meter, output, prompt=PromptTokens(50_000, CountedOnce(10)), reply_key=KEY
    )
    assert call.keeps_reply

    again = await meter.open(
        ALICE,
        MODEL,
        operation="chat.completions",
        source="openai",
        prompt=PromptTokens(10, CountedOnce(10)),
        max_output_tokens=1,
        reply_key=KEY,
    )

    assert again == KeyInUse(KEY.key, KeyUse.IN_FLIGHT, call.request_id)
    assert meter.in_flight == 1
    await call.release()


async def test_a_call_refused_at_its_exact_count_claims_no_idempotency_key(
    meter: Meter,
) -> None:
    with pytest.raises(ApiError) as caught:
        await open_call(
            meter, 10_000_000, prompt=PromptTokens(50_000, CountedOnce(10)), reply_key=KEY
        )
    assert caught.value.status == 402

    call = await open_call(meter, 100, prompt=PromptTokens(10, CountedOnce(10)), reply_key=KEY)

    assert call.keeps_reply
    await call.release()
