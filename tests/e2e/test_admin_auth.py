"""Every admin route refuses anyone without the admin token, and is closed when none is set."""

from typing import Any

import httpx
import pytest

from ledger import AccountNotFound, LedgerStore
from tests.e2e.support import Org, RunningGateway, StartGateway

ADMIN_TOKEN = "admin-secret-for-tests"

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/admin/organizations", {"org_id": "intruder"}),
    ("GET", "/admin/organizations", None),
    ("GET", "/admin/organizations/{org}", None),
    ("GET", "/admin/organizations/{org}/balance", None),
    ("POST", "/admin/organizations/{org}/keys", {"name": "x"}),
    ("GET", "/admin/organizations/{org}/keys", None),
    ("DELETE", "/admin/organizations/{org}/keys/{key}", None),
    ("PATCH", "/admin/organizations/{org}/keys/{key}", {"rpm": 1}),
    ("POST", "/admin/organizations/{org}/credit_grants", {"spus": "1000", "reason": "free"}),
    ("GET", "/admin/organizations/{org}/credit_transactions", None),
    ("PUT", "/admin/organizations/{org}/plan", {"allowance_spus": "1000"}),
    ("DELETE", "/admin/organizations/{org}/plan", None),
    ("GET", "/admin/organizations/{org}/usage", None),
    ("GET", "/admin/usage", None),
    ("PUT", "/admin/organizations/{org}/alerts", {"url": "https://x.test"}),
    ("GET", "/admin/organizations/{org}/alerts", None),
    ("DELETE", "/admin/organizations/{org}/alerts", None),
    ("GET", "/admin/organizations/{org}/alerts/events", None),
    ("POST", "/admin/organizations/{org}/alerts/events/{event}/retry", None),
    ("PUT", "/admin/organizations/{org}/auto_recharge", {"threshold_spus": "1"}),
    ("GET", "/admin/organizations/{org}/auto_recharge", None),
    ("DELETE", "/admin/organizations/{org}/auto_recharge", None),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]


@pytest.fixture
def admin_gateway(start_gateway: StartGateway) -> RunningGateway:
    return start_gateway(admin_token=ADMIN_TOKEN)


async def answers(
    gateway: RunningGateway, org: Org, headers: dict[str, str]
) -> dict[str, tuple[int, str]]:
    """Every admin route's status and error code for one set of headers."""
    found = {}
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        for method, path, body in ROUTES:
            url = path.format(org=org.org_id, key=org.key_id, event="evt_1")
            response = await client.request(method, url, json=body, headers=headers)
            found[f"{method} {path}"] = (response.status_code, response.json()["error"]["code"])
    return found


async def assert_untouched(store: LedgerStore, org: Org) -> None:
    """The refused requests changed nothing: no new org, no grant, no plan, key still active."""
    account = await store.get_account(org.org_id)
    assert account.granted_credits_units == 100_000_000
    assert account.subscription_type == "free"
    assert [key.revoked_at for key in await store.list_access_keys(org.org_id)] == [None]
    with pytest.raises(AccountNotFound):
        await store.get_account("intruder")


def every_route(status: int, code: str) -> dict[str, tuple[int, str]]:
    return {route: (status, code) for route in ROUTE_IDS}


async def test_without_a_token_every_admin_route_answers_401(
    admin_gateway: RunningGateway, org: Org, store: LedgerStore
) -> None:
    assert await answers(admin_gateway, org, {}) == every_route(401, "missing_admin_token")
    await assert_untouched(store, org)


async def test_a_wrong_admin_token_is_refused_with_403_on_every_admin_route(
    admin_gateway: RunningGateway, org: Org, store: LedgerStore
) -> None:
    wrong = {"authorization": f"Bearer {ADMIN_TOKEN}x"}

    assert await answers(admin_gateway, org, wrong) == every_route(403, "invalid_admin_token")
    await assert_untouched(store, org)


async def test_an_org_access_token_is_refused_on_every_admin_route(
    admin_gateway: RunningGateway, org: Org, store: LedgerStore
) -> None:
    as_org = {"authorization": f"Bearer {org.token}"}

    assert await answers(admin_gateway, org, as_org) == every_route(403, "org_token_refused")
    await assert_untouched(store, org)


async def test_without_an_admin_token_configured_the_admin_api_is_closed(
    start_gateway: StartGateway, org: Org, store: LedgerStore
) -> None:
    gateway = start_gateway()
    closed = every_route(403, "admin_api_disabled")
    for headers in ({}, {"authorization": "Bearer x"}, {"authorization": f"Bearer {org.token}"}):
        assert await answers(gateway, org, headers) == closed
    await assert_untouched(store, org)


async def test_the_admin_token_is_only_accepted_as_a_bearer_token(
    admin_gateway: RunningGateway, org: Org
) -> None:
    as_api_key = {"x-api-key": ADMIN_TOKEN}

    assert await answers(admin_gateway, org, as_api_key) == every_route(401, "missing_admin_token")


async def test_the_route_list_above_covers_every_admin_route(
    admin_gateway: RunningGateway,
) -> None:
    async with httpx.AsyncClient(base_url=admin_gateway.url) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]

    served = {
        (
            method.upper(),
            path.replace("{org_id}", "{org}")
            .replace("{key_id}", "{key}")
            .replace("{event_id}", "{event}"),
        )
        for path, methods in paths.items()
        if path.startswith("/admin")
        for method in methods
    }
    assert served == {(method, path) for method, path, _ in ROUTES}
