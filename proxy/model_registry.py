"""The models this gateway serves: public name → upstream route and its token prices."""

import importlib.util
from dataclasses import dataclass
from decimal import Decimal

from pricing import ModelRates, RateOverride, UnknownModelPrice, resolve_rates
from proxy.errors import ApiError
from proxy.settings import ModelRoute

DEMO_MODEL = ModelRoute(
    model_name="spu-demo",
    provider_model="spu-demo",
    api_format="demo",
    provider="demo",
    input_cost_per_token=Decimal("0.0000005"),
    output_cost_per_token=Decimal("0.0000015"),
    max_output_tokens=4096,
)
"""Answers locally with no key and no network, so a fresh install shows metering working."""

_DEFAULT_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "demo": "demo"}


@dataclass(frozen=True, slots=True)
class ServedModel:
    route: ModelRoute
    rates: ModelRates
    provider: str

    @property
    def name(self) -> str:
        return self.route.model_name


def _provider_of(route: ModelRoute) -> str:
    if route.provider:
        return route.provider
    if route.api_format == "litellm" and "/" in route.provider_model:
        return route.provider_model.split("/", 1)[0]
    return _DEFAULT_PROVIDERS.get(route.api_format, route.api_format)


def _serve(route: ModelRoute) -> ServedModel:
    if route.api_format == "litellm" and importlib.util.find_spec("litellm") is None:
        raise ValueError(
            f"model {route.model_name!r} has api_format litellm, but litellm is not installed:"
            " install the gateway's [litellm] extra (SPU_EXTRAS=litellm ./scripts/run.sh)"
        )
    try:
        rates = resolve_rates(
            route.provider_model,
            RateOverride(
                input_usd_per_token=route.input_cost_per_token,
                output_usd_per_token=route.output_cost_per_token,
                cache_creation_input_usd_per_token=route.cache_creation_input_cost_per_token,
                cache_read_input_usd_per_token=route.cache_read_input_cost_per_token,
                max_output_tokens=route.max_output_tokens,
            ),
        )
    except UnknownModelPrice as error:
        raise ValueError(
            f"model {route.model_name!r}: no price for {route.provider_model!r} in litellm's"
            " cost map; set input_cost_per_token and output_cost_per_token in its config"
        ) from error
    return ServedModel(route=route, rates=rates, provider=_provider_of(route))


class ModelRegistry:
    """Built once at start-up; an unpriced model is a start-up error, never a request-time one."""

    def __init__(self, routes: list[ModelRoute], *, include_demo: bool) -> None:
        served = [_serve(route) for route in routes]
        if include_demo and all(route.model_name != DEMO_MODEL.model_name for route in routes):
            served.append(_serve(DEMO_MODEL))
        self._models = {model.name: model for model in served}

    def get(self, name: object) -> ServedModel:
        if not isinstance(name, str) or not name:
            raise ApiError(400, "'model' is required.", param="model", code="missing_model")
        model = self._models.get(name)
        if model is None:
            raise ApiError(
                404,
                f"The model '{name}' does not exist or is not served by this gateway.",
                param="model",
                code="model_not_found",
            )
        return model

    def all(self) -> list[ServedModel]:
        return list(self._models.values())

    @property
    def needs_litellm(self) -> bool:
        return any(model.route.api_format == "litellm" for model in self._models.values())
