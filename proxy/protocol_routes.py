"""How the wire-protocol routes (OpenAI's, Anthropic's) are registered: plain Starlette routes.

Their handlers take the ``Request`` and parse their own JSON. As FastAPI
routes, per-request dependency solving (query parsing, signature inspection)
was about a sixth of a metered call's CPU in the gateway. Every protocol route
is registered through ``protocol_route``, which gives a route's OpenAPI
description (its request schema) one place to be attached.
"""

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]


def protocol_route(router: APIRouter, method: str, path: str, endpoint: Endpoint) -> None:
    router.add_route(path, endpoint, methods=[method])
