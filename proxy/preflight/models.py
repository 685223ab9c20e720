"""Every model the gateway would serve: priced, routable, and with its upstream key set."""

from dataclasses import dataclass

from proxy.model_registry import ServedModel, UnusableModel, missing_key, serve, served_routes
from proxy.preflight.problems import Problem
from proxy.settings import ModelRoute, Settings


@dataclass(frozen=True, slots=True)
class ModelCheck:
    route: ModelRoute
    served: ServedModel | None
    """The model with its prices; None when it cannot be served."""
    unusable: Problem | None
    missing_key: Problem | None
    """``api_key_env`` names a variable that is not set: the model's calls are refused."""


def check_models(settings: Settings) -> list[ModelCheck]:
    return [
        _check(route)
        for route in served_routes(settings.model_list, include_demo=settings.demo_model)
    ]


def _check(route: ModelRoute) -> ModelCheck:
    try:
        served, unusable = serve(route), None
    except UnusableModel as error:
        served, unusable = None, Problem(str(error))
    variable = missing_key(route)
    absent = None
    if variable is not None:
        absent = Problem(
            f"model {route.model_name!r}: {variable} (its api_key_env) is not set, so its"
            " calls are refused",
            f"export {variable}=<the provider's key> before starting the gateway",
        )
    return ModelCheck(route=route, served=served, unusable=unusable, missing_key=absent)
