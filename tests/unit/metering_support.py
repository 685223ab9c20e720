"""The priced model, org and call opener shared by the meter's unit tests."""

from decimal import Decimal

from pricing import PricingPolicy
from proxy.auth import Principal
from proxy.call.meter import Meter
from proxy.call.metered_call import MeteredCall
from proxy.model_registry import ModelRegistry, ServedModel
from proxy.settings import ModelRoute

POLICY = PricingPolicy(markup=Decimal("0.25"), usd_per_spu=Decimal("0.01"))
ROUTE = ModelRoute(
    model_name="m",
    provider_model="gpt-4o-mini",
    input_cost_per_token=Decimal("0.000001"),
    output_cost_per_token=Decimal("0.000002"),
)
MODEL: ServedModel = ModelRegistry([ROUTE], include_demo=False).get("m")
ALICE = Principal(org_id="org_a", key_id="key_a")


async def open_call(meter: Meter, max_output_tokens: int = 100) -> MeteredCall:
    opened = await meter.open(
        ALICE,
        MODEL,
        operation="chat.completions",
        source="openai",
        prompt_tokens=10,
        max_output_tokens=max_output_tokens,
    )
    assert isinstance(opened, MeteredCall), opened
    return opened
