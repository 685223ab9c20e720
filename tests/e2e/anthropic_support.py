"""What the Anthropic e2e tests share: model routes, SDK clients, and prices worked out here.

Expected charges are computed from litellm's cost map read directly (not
through ``pricing``), so a pricing bug cannot hide behind an equal bug in the
test's expectation.
"""

import asyncio
import importlib.util
import json
from decimal import ROUND_CEILING, Decimal
from functools import cache
from pathlib import Path
from typing import Any

from anthropic import AsyncAnthropic
from anthropic.types import Message

from ledger import UsageRecord
from proxy.settings import ModelRoute
from tests.e2e.support import MARKUP, USD_PER_SPU, WAIT_FOR_LEDGER_S, RunningGateway
from tests.fakes.upstream import FakeUpstream

SONNET = "claude-sonnet-4-6"
HAIKU = "claude-haiku-4-5"
UPSTREAM_KEY_ENV = "FAKE_ANTHROPIC_KEY"
UPSTREAM_KEY = "sk-ant-fake-upstream-key"


def anthropic_routes(upstream_url: str) -> list[ModelRoute]:
    """Both Claude models on the fake's Anthropic endpoint, priced from litellm's map."""
    return [
        ModelRoute(
            model_name=name,
            provider_model=name,
            api_format="anthropic",
            api_base=f"{upstream_url}/v1",
            api_key_env=UPSTREAM_KEY_ENV,
        )
        for name in (SONNET, HAIKU)
    ]


def anthropic_client(
    gateway: RunningGateway, *, api_key: str | None = None, auth_token: str | None = None
) -> AsyncAnthropic:
    return AsyncAnthropic(
        base_url=gateway.url, api_key=api_key, auth_token=auth_token, max_retries=0, timeout=10.0
    )


async def ask(client: AsyncAnthropic, stream: bool, **request: Any) -> Message:
    """One Messages call, plain or streamed to its final message."""
    if not stream:
        return await client.messages.create(**request)
    async with client.messages.stream(**request) as events:
        return await events.get_final_message()


@cache
def _cost_map() -> dict[str, dict[str, object]]:
    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    loaded: dict[str, dict[str, object]] = json.loads(
        (folder / "model_prices_and_context_window_backup.json").read_text()
    )
    return loaded


def litellm_rate(model: str, key: str) -> Decimal:
    return Decimal(str(_cost_map()[model][key]))


def expected_cost_pico_usd(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_creation_input_tokens: int = 0,
    cache_read_input_tokens: int = 0,
) -> int:
    cost_usd = (
        input_tokens * litellm_rate(model, "input_cost_per_token")
        + output_tokens * litellm_rate(model, "output_cost_per_token")
        + cache_creation_input_tokens * litellm_rate(model, "cache_creation_input_token_cost")
        + cache_read_input_tokens * litellm_rate(model, "cache_read_input_token_cost")
    )
    return int((cost_usd * 10**12).to_integral_value(ROUND_CEILING))


def expected_units_for_cost(cost_pico_usd: int) -> int:
    units = Decimal(cost_pico_usd) / 10**12 * (1 + MARKUP) / USD_PER_SPU * 1_000_000
    return int(units.to_integral_value(ROUND_CEILING))


def assert_charged(record: UsageRecord, model: str, **tokens: int) -> None:
    """The record's cost and charge are what litellm's rates and the policy give."""
    cost = expected_cost_pico_usd(model, **tokens)
    assert record.details.cost_pico_usd == cost
    assert record.charged_units == expected_units_for_cost(cost)


async def wait_for_cut_stream(upstream: FakeUpstream) -> int:
    """The fake notices a gone client at its next send: poll (bounded) for it."""
    deadline = asyncio.get_running_loop().time() + WAIT_FOR_LEDGER_S
    while True:
        if upstream.streams_cut or asyncio.get_running_loop().time() > deadline:
            return upstream.streams_cut
        await asyncio.sleep(0.01)
