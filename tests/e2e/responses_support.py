"""What the Responses e2e tests share: a model whose upstream (the fake) serves the Responses API
itself, its prices, and charges worked out here from them."""

from decimal import ROUND_CEILING, Decimal
from typing import Any

from openai import AsyncOpenAI
from openai.types.responses import Response

from proxy.settings import ModelRoute
from tests.e2e.anthropic_support import UPSTREAM_KEY_ENV
from tests.e2e.support import MARKUP, USD_PER_SPU

NATIVE = "gpt-5-mini"
INPUT_USD = Decimal("0.00000025")
CACHED_INPUT_USD = Decimal("0.000000025")
OUTPUT_USD = Decimal("0.000002")


def native_route(upstream_url: str) -> ModelRoute:
    """``NATIVE`` on the fake's ``/v1/responses``, relayed as it is (``responses_api``)."""
    return ModelRoute(
        model_name=NATIVE,
        provider_model=NATIVE,
        api_base=f"{upstream_url}/v1",
        api_key_env=UPSTREAM_KEY_ENV,
        responses_api=True,
        input_cost_per_token=INPUT_USD,
        cache_read_input_cost_per_token=CACHED_INPUT_USD,
        output_cost_per_token=OUTPUT_USD,
    )


async def respond(client: AsyncOpenAI, stream: bool, **request: Any) -> Response:
    """One Responses call, plain or streamed to its final Response."""
    if not stream:
        return await client.responses.create(**request)
    async with client.responses.stream(**request) as events:
        return await events.get_final_response()


def units(cost_usd: Decimal) -> int:
    """SPU units for a provider cost, by the policy the tests configure (markup, SPU price)."""
    return int((cost_usd * (1 + MARKUP) / USD_PER_SPU * 1_000_000).to_integral_value(ROUND_CEILING))


def native_units(*, uncached: int, cached: int, output: int) -> int:
    return units(uncached * INPUT_USD + cached * CACHED_INPUT_USD + output * OUTPUT_USD)
