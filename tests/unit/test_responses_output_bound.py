"""The output bound a Responses call is held for."""

from decimal import Decimal

import pytest

from proxy.errors import ApiError
from proxy.model_registry import ModelRegistry
from proxy.request_body import MAX_TOKENS_LIMIT
from proxy.responses.routes import output_bound
from proxy.settings import ModelRoute

DEFAULT = 4096


def served(max_output_tokens: int | None) -> ModelRegistry:
    route = ModelRoute(
        model_name="in-house",
        provider_model="in-house-model",
        api_base="http://10.0.0.5/v1",
        input_cost_per_token=Decimal("0.000001"),
        output_cost_per_token=Decimal("0.000002"),
        max_output_tokens=max_output_tokens,
    )
    return ModelRegistry([route], include_demo=False)


@pytest.mark.parametrize(
    ("body", "model_max", "bound"),
    [
        ({}, None, DEFAULT),
        ({"max_output_tokens": 300}, None, 300),
        ({"max_output_tokens": 300}, 200, 200),
        ({}, 1000, 1000),
        ({"max_output_tokens": MAX_TOKENS_LIMIT}, None, MAX_TOKENS_LIMIT),
    ],
)
def test_the_bound_is_the_clients_else_the_default_never_past_the_model_or_pricing(
    body: dict[str, int], model_max: int | None, bound: int
) -> None:
    model = served(model_max).get("in-house")
    assert output_bound(body, model, DEFAULT) == bound


@pytest.mark.parametrize("value", [0, -1, True, "100", 1.5, MAX_TOKENS_LIMIT + 1, 10**15])
def test_a_bound_that_is_not_a_positive_integer_is_a_400_naming_it(value: object) -> None:
    with pytest.raises(ApiError) as refused:
        output_bound({"max_output_tokens": value}, served(None).get("in-house"), DEFAULT)
    assert (refused.value.status, refused.value.param) == (400, "max_output_tokens")
