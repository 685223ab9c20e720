"""Reading client request bodies: JSON objects only, every field a route reads checked once.

Routes read the fields they need through these checkers, so a field of the
wrong type or beyond its stated limit is a 400 naming it (in the client's
error shape), never a 500 from the code that reads it later. The limits are
the protocols' own where they state one, and are listed in the README.
"""

from typing import Any

import orjson
from fastapi import Request

from proxy.errors import ApiError, bad_request

MAX_TOKENS_LIMIT = 2**31 - 1
"""The largest token bound a request may set (``max_tokens`` and its kin): OpenAI's own
integer bound, far above any model's output; a model's own maximum clamps it further."""

MAX_CHOICES = 128
"""The most choices (``n``) one call may ask for: OpenAI's own bound."""


async def read_json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise bad_request("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise bad_request(
            f"The request body is not valid JSON: {error}", code="invalid_json"
        ) from error
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    return body


def invalid_field(name: str, expected: str) -> ApiError:
    return ApiError(400, f"'{name}' must be {expected}.", param=name, code="invalid_parameter")


def positive_int(body: dict[str, Any], *names: str, limit: int = MAX_TOKENS_LIMIT) -> int | None:
    """The first of ``names`` present in the body, checked as an integer from 1 to ``limit``."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
            raise invalid_field(name, f"an integer from 1 to {limit}")
        return value
    return None


def flag(body: dict[str, Any], name: str, *, within: str | None = None) -> bool:
    """A boolean field (absent or null: false); ``within`` names the object it sits in."""
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_field(f"{within}.{name}" if within else name, "a boolean (true or false)")
    return value


def json_object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    """An object field, or None when absent or null."""
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise invalid_field(name, "an object")
    return value


def json_array(body: dict[str, Any], name: str) -> list[Any] | None:
    """An array field, or None when absent or null."""
    value = body.get(name)
    if value is not None and not isinstance(value, list):
        raise invalid_field(name, "an array")
    return value
