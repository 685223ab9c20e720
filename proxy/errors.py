"""Errors as clients expect them: OpenAI's shape on ``/v1/*``, Anthropic's on ``/v1/messages``.

Routes raise ``ApiError``; one handler renders it in the caller's API shape,
so a status, a type and a human message are chosen in one place. Every 429
and 503 says when to try again (``Retry-After``, and ``retry-after-ms``, which
the OpenAI and Anthropic SDKs read first): an ``ApiError`` with either status
is not answered without that advice (``retry_after_s``).
"""

import math
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from proxy import outages

ANTHROPIC_PATH_PREFIX = "/v1/messages"

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}


RETRY_ADVISED_STATUSES = (429, 503)
UNTIL_RECONFIGURED_S = 3600.0
"""The advice of a 503 that lasts until the operator configures the gateway and restarts it."""


class ApiError(Exception):
    """A client-facing failure: HTTP status, OpenAI error type and code, and a message."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param
        self.extra = extra or {}
        self.headers = headers or {}
        if retry_after_s is not None:
            self.headers.update(retry_after_headers(retry_after_s))


def retry_after_headers(retry_after_s: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1, as HTTP has it) and the exact milliseconds."""
    return {
        "retry-after": str(max(1, math.ceil(retry_after_s))),
        "retry-after-ms": str(max(1, math.ceil(retry_after_s * 1000))),
    }


def wants_anthropic_shape(path: str) -> bool:
    return path.startswith(ANTHROPIC_PATH_PREFIX)


def error_body(error: ApiError, path: str) -> dict[str, Any]:
    if wants_anthropic_shape(path):
        return {
            "type": "error",
            "error": {
                "type": _ANTHROPIC_TYPES.get(error.status, "api_error"),
                "message": error.message,
                **error.extra,
            },
        }
    return {
        "error": {
            "message": error.message,
            "type": error.error_type,
            "param": error.param,
            "code": error.code,
            **error.extra,
        }
    }


def error_event(error: ApiError, path: str) -> bytes:
    """The error as a stream's closing server-sent event, which the client's SDK raises:
    Anthropic's names its event ``error``; OpenAI's carries the error as its data."""
    data = orjson.dumps(error_body(error, path))
    if wants_anthropic_shape(path):
        return b"event: error\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"


def error_response(error: ApiError, path: str) -> JSONResponse:
    assert error.status not in RETRY_ADVISED_STATUSES or "retry-after" in error.headers, (
        f"a {error.status} must say when to retry (retry_after_s)"
    )
    return JSONResponse(error_body(error, path), status_code=error.status, headers=error.headers)


async def handle_api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error, request.url.path)


async def handle_http_exception(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    status = error.status_code
    error_type = "not_found_error" if status == 404 else "invalid_request_error"
    return error_response(
        ApiError(
            status, str(error.detail), error_type=error_type, headers=dict(error.headers or {})
        ),
        request.url.path,
    )


async def handle_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    location = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = (
        f"{location}: {first.get('msg', 'invalid request')}" if location else "invalid request"
    )
    return error_response(ApiError(400, message, param=location or None), request.url.path)


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def ledger_unavailable() -> ApiError:
    """The credit ledger cannot be reached: refuse rather than serve unmetered (fail closed)."""
    return ApiError(
        503,
        "The credit ledger is unavailable; try again shortly.",
        error_type="api_error",
        code="ledger_unavailable",
        retry_after_s=outages.LEDGER.retry_after_s(),
    )
