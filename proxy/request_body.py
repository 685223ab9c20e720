"""Reading client request bodies: JSON objects only, with errors in the client's shape."""

from typing import Any

import orjson
from fastapi import Request

from proxy.errors import ApiError, bad_request


async def read_json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw or raw.isspace():  # not strip(): that would copy a large body to look at it
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


def positive_int(body: dict[str, Any], *names: str) -> int | None:
    """The first of ``names`` present in the body, validated as a positive integer."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ApiError(400, f"'{name}' must be a positive integer.", param=name)
        return value
    return None
