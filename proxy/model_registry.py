"""The models this gateway serves: public name → upstream route and its token prices."""

import importlib.util
import os
from dataclasses import dataclass
from decimal import Decimal

from pricing import ModelRates, RateOverride, UnknownModelPrice, resolve_rates
from proxy.errors import UNTIL_RECONFIGURED_S, ApiError
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


class UnusableModel(ValueError):
    """A configured model the gateway cannot serve; the message names it and says what to do."""


def missing_key(route: ModelRoute) -> str | None:
    """The variable ``api_key_env`` names, when it is unset or empty (the key is read per call)."""
    if route.api_key_env and not os.environ.get(route.api_key_env):
        return route.api_key_env
    return None


def served_routes(routes: list[ModelRoute], *, include_demo: bool) -> list[ModelRoute]:
    """The configured routes, and the demo model unless it is off or a route takes its name."""
    if include_demo and all(route.model_name != DEMO_MODEL.model_name for route in routes):
        return [*routes, DEMO_MODEL]
    return list(routes)


def serve(route: ModelRoute) -> ServedModel:
    """The route with its prices, or ``UnusableModel``: no price, a bad override, no litellm."""
    if route.api_format == "litellm" and importlib.util.find_spec("litellm") is None:
        raise UnusableModel(
            f"model {route.model_name!r} has api_format litellm, but litellm is not installed:"
            " install the gateway's [litellm] extra (SPU_EXTRAS=litellm ./scripts/run.sh)"
        )
    try:
        override = RateOverride(
            input_usd_per_token=route.input_cost_per_token,
            output_usd_per_token=route.output_cost_per_token,
            cache_creation_input_usd_per_token=route.cache_creation_input_cost_per_token,
            cache_read_input_usd_per_token=route.cache_read_input_cost_per_token,
            max_output_tokens=route.max_output_tokens,
        )
    except ValueError as error:
        raise UnusableModel(f"model {route.model_name!r}: {error}") from error
    try:
        rates = resolve_rates(route.provider_model, override)
    except UnknownModelPrice as error:
        raise UnusableModel(
            f"model {route.model_name!r}: no price for {route.provider_model!r} in litellm's"
            " cost map; set input_cost_per_token and output_cost_per_token in its config"
        ) from error
    return ServedModel(route=route, rates=rates, provider=_provider_of(route))


class ModelRegistry:
    """Built once at start-up; an unpriced model is a start-up error, never a request-time one."""

    def __init__(self, routes: list[ModelRoute], *, include_demo: bool) -> None:
        served = [serve(route) for route in served_routes(routes, include_demo=include_demo)]
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
        if missing_key(model.route) is not None:
            # Forwarded without a key, the call would fail upstream as if the
            # caller's own credentials were wrong; the gateway's operator must act.
            raise ApiError(
                503,
                f"The model '{name}' is not available: this gateway has no upstream key for it.",
                error_type="server_error",
                code="upstream_key_missing",
                retry_after_s=UNTIL_RECONFIGURED_S,
            )
        return model

    def all(self) -> list[ServedModel]:
        return list(self._models.values())

    @property
    def needs_litellm(self) -> bool:
        return any(model.route.api_format == "litellm" for model in self._models.values())
