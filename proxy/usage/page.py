"""The customer's usage page at ``/usage`` and the JSON it reads.

The page is static (``proxy/static``) and calls ``/v1/usage/summary`` with
either the org's access token (typed once, kept in the tab's sessionStorage)
or a signed link from ``POST /v1/usage/link``. A link is read-only: it opens
the summary and nothing else, not even the billing buttons.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ledger import AccountNotFound, LedgerUnavailable
from proxy.auth import Principal, bearer_token
from proxy.errors import ApiError, ledger_unavailable
from proxy.gateway import authenticated, gateway_of
from proxy.server import request_log
from proxy.usage.links import (
    DEFAULT_LINK_TTL_S,
    LINK_PREFIX,
    MAX_LINK_TTL_S,
    UsageLinks,
    link_key,
)
from proxy.usage.summary import usage_summary

router = APIRouter()

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
"""Shipped as package data beside the code (``proxy/static``)."""
ASSETS = {
    "usage.js": ("usage.js", "text/javascript"),
    "usage.css": ("usage.css", "text/css"),
    "chart.umd.min.js": ("vendor/chart.umd.min.js", "text/javascript"),
}
"""The only files ``/usage/assets`` serves: an allow-list, so no path is ever resolved."""
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}
MAX_RECENT_CALLS = 100


@dataclass(frozen=True, slots=True)
class Viewer:
    org_id: str
    via_link: bool


def _links(request: Request) -> UsageLinks:
    return UsageLinks(link_key(gateway_of(request).settings.admin_token))


async def viewer(request: Request) -> Viewer:
    """FastAPI dependency: the org whose usage may be read, by access token or signed link."""
    token = bearer_token(request)
    if token is not None and token.startswith(LINK_PREFIX):
        org_id = _links(request).verify(token)
        if org_id is None:
            raise ApiError(
                401,
                "This usage link is invalid or has expired; ask for a new one.",
                code="invalid_usage_link",
            )
        who = Viewer(org_id, via_link=True)
    else:
        principal = await gateway_of(request).auth.authenticate(token)
        who = Viewer(principal.org_id, via_link=False)
    request_log.note(org_id=who.org_id)
    return who


class UsageLinkCreate(BaseModel):
    ttl_s: int = Field(default=DEFAULT_LINK_TTL_S, ge=60, le=MAX_LINK_TTL_S)


class UsageLink(BaseModel):
    object: str = "usage_link"
    url: str = Field(description="Opens the usage page; the signed part is in the fragment.")
    expires_at: datetime


class UsageConfig(BaseModel):
    stripe: bool = Field(description="Whether buying credits and the billing portal are offered.")


@router.get("/usage", include_in_schema=False)
async def usage_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "usage.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/usage/assets/{name}", include_in_schema=False)
async def usage_asset(name: str) -> FileResponse:
    asset = ASSETS.get(name)
    if asset is None:
        raise ApiError(404, f"No asset '{name}'.", error_type="not_found_error")
    path, media_type = asset
    return FileResponse(
        STATIC_DIR / path, media_type=media_type, headers={"cache-control": "no-cache"}
    )


@router.get("/v1/usage/config", response_model=UsageConfig)
async def usage_config(request: Request) -> UsageConfig:
    return UsageConfig(stripe=gateway_of(request).billing is not None)


@router.post("/v1/usage/link", response_model=UsageLink)
async def usage_link(
    request: Request,
    principal: Annotated[Principal, Depends(authenticated)],
    body: UsageLinkCreate | None = None,
) -> UsageLink:
    """A short-lived link to this org's usage page, to share or bookmark without the token."""
    ttl_s = (body or UsageLinkCreate()).ttl_s
    token, expires_at_s = _links(request).sign(principal.org_id, ttl_s)
    base = gateway_of(request).settings.public_url.rstrip("/")
    return UsageLink(
        url=f"{base}/usage#link={token}", expires_at=datetime.fromtimestamp(expires_at_s, UTC)
    )


@router.get("/v1/usage/summary")
async def summary(
    request: Request,
    who: Annotated[Viewer, Depends(viewer)],
    recent: Annotated[int, Query(ge=1, le=MAX_RECENT_CALLS)] = 20,
) -> dict[str, Any]:
    """Everything the usage page shows, read from the ledger (never from Stripe)."""
    try:
        data = await usage_summary(
            gateway_of(request).store, who.org_id, recent_calls=recent, now=datetime.now(UTC)
        )
    except AccountNotFound as error:
        raise ApiError(
            404, "No usage for this organization.", code="organization_not_found"
        ) from error
    except LedgerUnavailable as error:
        raise ledger_unavailable() from error
    return {**data, "via_link": who.via_link}
