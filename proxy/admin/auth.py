"""Who may operate the gateway: the holder of ``SPU_ADMIN_TOKEN``, and nobody when it is unset.

The comparison runs in constant time so the token cannot be guessed byte by
byte from response times. Org access tokens are refused by name, so an
operator who pastes the wrong token is told why.
"""

import hmac

from fastapi import Request

from proxy.auth import TOKEN_PREFIX
from proxy.errors import ApiError
from proxy.gateway import gateway_of


def _presented_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def require_admin(request: Request) -> None:
    """FastAPI dependency guarding every ``/admin`` route (fail closed)."""
    configured = gateway_of(request).settings.admin_token
    if configured is None or not configured.get_secret_value():
        raise ApiError(
            403,
            "The admin API is disabled: set SPU_ADMIN_TOKEN to enable it.",
            error_type="permission_error",
            code="admin_api_disabled",
        )
    token = _presented_token(request)
    if token is None:
        raise ApiError(
            401,
            "Missing admin token: send 'Authorization: Bearer <SPU_ADMIN_TOKEN>'.",
            error_type="authentication_error",
            code="missing_admin_token",
            headers={"www-authenticate": "Bearer"},
        )
    if hmac.compare_digest(token.encode(), configured.get_secret_value().encode()):
        return
    if token.startswith(TOKEN_PREFIX):
        raise ApiError(
            403,
            "Organization access tokens cannot use the admin API; use SPU_ADMIN_TOKEN.",
            error_type="permission_error",
            code="org_token_refused",
        )
    raise ApiError(
        403, "Invalid admin token.", error_type="permission_error", code="invalid_admin_token"
    )
