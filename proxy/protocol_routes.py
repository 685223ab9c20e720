"""How the wire-protocol routes (OpenAI's, Anthropic's) are registered: plain Starlette routes,
described in ``/openapi.json`` all the same.

Their handlers take the ``Request`` and parse their own JSON. As FastAPI
routes, per-request dependency solving (query parsing, signature inspection)
was about a sixth of a metered call's CPU in the gateway. FastAPI documents
only its own routes, so ``protocol_route`` keeps each route's OpenAPI
operation (its summary, request schema and answers) on its ``ProtocolRouter``,
and ``documented`` merges them into the application's schema: the operations
are written once, by the protocol packages, and cost nothing per request.

The routes go straight onto the application's own router (``serve``), not
through ``include_router``: FastAPI matches an included router's routes twice per
request (to choose the router, then the route), which cost a plain chat call
about 2.5 % of its instructions. A ``ProtocolRoute`` also names itself in the
scope, as FastAPI's own routes do, so the request log and ``spu_requests_total``
label a call by its route's template: labelled by the concrete path,
``/v1/models/<anything>`` grew the metric by one series per request, even
unauthenticated.

A request schema names the model as ``#/components/schemas/ModelName``: the
names this gateway serves, filled in when the schema is built.
"""

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

Endpoint = Callable[[Request], Awaitable[Response]]
JsonSchema = dict[str, Any]

MODEL_NAME = {"$ref": "#/components/schemas/ModelName"}
"""A request's ``model``: one of the names this gateway serves."""

_PATH_PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")
_ERROR_ANSWERS = {
    400: "Invalid request: the parameter is named",
    401: "Missing, invalid, revoked or expired access token",
    402: "Not enough SPU credits for the worst case of this call",
    404: "Unknown model",
    413: "Request body larger than SPU_MAX_BODY_BYTES",
    429: "Too many calls in flight for the organization (Retry-After says when to retry)",
    502: "The upstream could not be reached",
    503: "The credit ledger is unavailable (Retry-After says when to retry)",
    504: "The upstream timed out",
}
METERED_ANSWERS = (400, 402, 404, 413, 429, 502, 503, 504)
"""The error answers of every metered inference route, whatever its protocol."""


class ProtocolRoute(Route):
    """A plain Starlette route that puts itself in the scope when it matches."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


class ProtocolRouter:
    """A protocol's routes, and the OpenAPI operations that describe them."""

    def __init__(self) -> None:
        self.routes: list[ProtocolRoute] = []
        self.operations: dict[str, dict[str, JsonSchema]] = {}


def protocol_route(
    router: ProtocolRouter,
    method: str,
    path: str,
    endpoint: Endpoint,
    *,
    summary: str,
    request_schema: JsonSchema | None = None,
    answers: Sequence[int] = (),
) -> None:
    """Serve ``endpoint`` and describe it: ``answers`` are the error statuses it may give."""
    router.routes.append(ProtocolRoute(path, endpoint, methods=[method]))
    operation: JsonSchema = {
        "summary": summary,
        "operationId": endpoint.__name__,
        "responses": {
            "200": {"description": "Answered (a JSON body, or an event stream when streamed)"},
            **{str(status): {"description": _ERROR_ANSWERS[status]} for status in (401, *answers)},
        },
    }
    names = _PATH_PARAMETER.findall(path)
    if names:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in names
        ]
    if request_schema is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": request_schema}},
        }
    # OpenAPI names a path parameter bare: ``{model}`` for Starlette's ``{model:path}``.
    openapi_path = _PATH_PARAMETER.sub(r"{\1}", path)
    router.operations.setdefault(openapi_path, {})[method.lower()] = operation


def serve(app: FastAPI, routers: Iterable[ProtocolRouter]) -> None:
    """Add the routers' routes to the application's own router, in order."""
    for router in routers:
        app.router.routes.extend(router.routes)


def documented(
    app: FastAPI, routers: Iterable[ProtocolRouter], model_names: Sequence[str]
) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with the protocol routers' operations and the served model names."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default_openapi()
            for router in routers:
                for path, operations in router.operations.items():
                    schema["paths"].setdefault(path, {}).update(operations)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["ModelName"] = {"type": "string", "enum": list(model_names)}
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
