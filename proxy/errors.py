"""Errors as clients expect them: OpenAI's shape on ``/v1/*``, Anthropic's on ``/v1/messages``.

Routes raise ``ApiError``; one handler renders it in the caller's API shape,
so a status, a type and a human message are chosen in one place.
"""

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

ANTHROPIC_PATH_PREFIX = "/v1/messages"

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}


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
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.param = param
        self.extra = extra or {}
        self.headers = headers or {}


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


def error_response(error: ApiError, path: str) -> JSONResponse:
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
    )
