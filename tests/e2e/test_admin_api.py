"""The admin API over real HTTP: every route, its effect on the ledger, and its errors."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ledger import LedgerStore, format_spus, spus_to_units
from tests.e2e.support import (
    CHAT_MODEL,
    EMBEDDING_MODEL,
    Org,
    RunningGateway,
    StartGateway,
    expected_units,
    new_org,
)
from tests.fakes.upstream import FakeUpstream

ADMIN_TOKEN = "admin-secret-for-tests"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
FREE_GRANT_SPUS = 25
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Count my tokens."}]
CHAT_UNITS = expected_units(17, 14)


@pytest.fixture
def admin_gateway(start_gateway: StartGateway) -> RunningGateway:
    return start_gateway(admin_token=ADMIN_TOKEN, free_grant_spus=FREE_GRANT_SPUS)


@pytest.fixture
async def http(admin_gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=admin_gateway.url, headers=ADMIN) as client:
        yield client


async def chat(gateway: RunningGateway, token: str) -> None:
    async with gateway.client(token) as client:
        await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)


async def test_creating_an_org_grants_the_configured_free_tier_once(
    http: httpx.AsyncClient, store: LedgerStore
) -> None:
    created = await http.post(
        "/admin/organizations", json={"org_id": "acme", "user_email": "ops@acme.test"}
    )
    again = await http.post("/admin/organizations", json={"org_id": "acme"})

    assert created.status_code == 201
    assert again.status_code == 200
    body = created.json()
    assert body["object"] == "organization"
    assert body["user_email"] == "ops@acme.test"
    assert body["balance"]["buckets"]["granted"]["total"] == str(FREE_GRANT_SPUS)
    assert again.json()["user_email"] == "ops@acme.test"
    account = await store.get_account("acme")
    assert account.granted_credits_units == spus_to_units(FREE_GRANT_SPUS)


async def test_an_org_id_with_spaces_or_slashes_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/admin/organizations", json={"org_id": "a b/c"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "org_id"


async def test_listing_orgs_pages_in_id_order(http: httpx.AsyncClient) -> None:
    for org_id in ("org-a", "org-b", "org-c"):
        await http.post("/admin/organizations", json={"org_id": org_id})

    first = (await http.get("/admin/organizations", params={"limit": 2})).json()
    rest = (
        await http.get("/admin/organizations", params={"limit": 2, "starting_after": "org-b"})
    ).json()

    assert [org["org_id"] for org in first["data"]] == ["org-a", "org-b"]
    assert first["has_more"] is True
    assert [org["org_id"] for org in rest["data"]] == ["org-c"]
    assert rest["has_more"] is False


async def test_getting_an_org_shows_its_ledger_balance(
    admin_gateway: RunningGateway, http: httpx.AsyncClient, org: Org, store: LedgerStore
) -> None:
    await chat(admin_gateway, org.token)

    org_response = await http.get(f"/admin/organizations/{org.org_id}")
    balance_response = await http.get(f"/admin/organizations/{org.org_id}/balance")

    ledger = await store.balance(org.org_id)
    for balance in (org_response.json()["balance"], balance_response.json()):
        assert balance["available_spus"] == format_spus(ledger.available_units)
        assert balance["buckets"]["granted"]["used"] == format_spus(CHAT_UNITS)


async def test_an_unknown_org_is_a_404_with_a_code(http: httpx.AsyncClient) -> None:
    for path in ("/admin/organizations/nobody", "/admin/organizations/nobody/keys"):
        response = await http.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "organization_not_found"


async def test_a_new_key_is_shown_once_and_opens_the_org(
    admin_gateway: RunningGateway, http: httpx.AsyncClient, org: Org
) -> None:
    created = await http.post(f"/admin/organizations/{org.org_id}/keys", json={"name": "ci"})
    token = created.json()["token"]

    listed = (await http.get(f"/admin/organizations/{org.org_id}/keys")).json()["data"]
    async with httpx.AsyncClient(base_url=admin_gateway.url) as client:
        balance = await client.get("/v1/balance", headers={"authorization": f"Bearer {token}"})

    assert created.status_code == 201
    assert token.startswith(created.json()["prefix"])
    assert {key["key_id"] for key in listed} == {org.key_id, created.json()["key_id"]}
    assert all("token" not in key for key in listed)
    assert balance.json()["org_id"] == org.org_id


async def test_a_key_for_an_unknown_org_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/admin/organizations/nobody/keys", json={})

    assert response.status_code == 404


async def test_a_revoked_key_is_refused_at_once_despite_the_token_cache(
    start_gateway: StartGateway, store: LedgerStore
) -> None:
    gateway = start_gateway(admin_token=ADMIN_TOKEN, token_cache_ttl_s=3600.0)
    org = await new_org(store)
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        as_org = {"authorization": f"Bearer {org.token}"}
        assert (await client.get("/v1/balance", headers=as_org)).status_code == 200

        revoked = await client.delete(
            f"/admin/organizations/{org.org_id}/keys/{org.key_id}", headers=ADMIN
        )
        after = await client.get("/v1/balance", headers=as_org)

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert after.status_code == 401


async def test_revoking_an_unknown_key_is_a_404(http: httpx.AsyncClient, org: Org) -> None:
    response = await http.delete(f"/admin/organizations/{org.org_id}/keys/key_nope")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "access_key_not_found"


async def test_a_grant_retried_with_its_idempotency_key_lands_once(
    http: httpx.AsyncClient, org: Org, store: LedgerStore
) -> None:
    path = f"/admin/organizations/{org.org_id}/credit_grants"
    grant = {"spus": "12.5", "reason": "support ticket 42"}
    first = await http.post(path, json=grant, headers={"idempotency-key": "ticket-42"})
    retry = await http.post(path, json=grant, headers={"idempotency-key": "ticket-42"})

    assert (first.status_code, retry.status_code) == (201, 200)
    assert (first.json()["applied"], retry.json()["applied"]) == (True, False)
    assert retry.json()["balance"]["buckets"]["granted"]["total"] == "112.5"
    account = await store.get_account(org.org_id)
    assert account.granted_credits_units == spus_to_units(Decimal("112.5"))


async def test_a_grant_key_may_also_come_in_the_body(
    http: httpx.AsyncClient, org: Org, store: LedgerStore
) -> None:
    path = f"/admin/organizations/{org.org_id}/credit_grants"
    grant = {"spus": "5", "reason": "promo", "idempotency_key": "promo-1"}
    await http.post(path, json=grant)
    await http.post(path, json=grant)

    account = await store.get_account(org.org_id)
    assert account.granted_credits_units == spus_to_units(105)


async def test_reusing_a_grant_key_for_another_amount_is_a_conflict(
    http: httpx.AsyncClient, org: Org
) -> None:
    path = f"/admin/organizations/{org.org_id}/credit_grants"
    headers = {"idempotency-key": "k1"}
    await http.post(path, json={"spus": "5", "reason": "promo"}, headers=headers)
    conflict = await http.post(path, json={"spus": "6", "reason": "promo"}, headers=headers)

    assert conflict.status_code == 409
    assert conflict.json()["error"]["type"] == "idempotency_error"


@pytest.mark.parametrize("spus", ["0", "-1", "0.0000001"])
async def test_a_grant_must_be_positive_and_whole_units(
    http: httpx.AsyncClient, org: Org, spus: str
) -> None:
    response = await http.post(
        f"/admin/organizations/{org.org_id}/credit_grants", json={"spus": spus, "reason": "x"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "spus"


@pytest.mark.parametrize("spus", [5.8e16, "9007199254.740993", "1e400"])
async def test_amounts_beyond_what_the_ledger_stores_are_a_400_and_change_nothing(
    http: httpx.AsyncClient, org: Org, store: LedgerStore, spus: float | str
) -> None:
    """One ledger operation carries at most 2**53 units (9,007,199,254.740992 SPUs)."""
    grant = await http.post(
        f"/admin/organizations/{org.org_id}/credit_grants", json={"spus": spus, "reason": "x"}
    )
    plan = await http.put(f"/admin/organizations/{org.org_id}/plan", json={"allowance_spus": spus})

    assert (grant.status_code, grant.json()["error"]["param"]) == (400, "spus")
    assert (plan.status_code, plan.json()["error"]["param"]) == (400, "allowance_spus")
    account = await store.get_account(org.org_id)
    assert (account.granted_credits_units, account.subscription_allowance_units) == (
        spus_to_units(100),
        0,
    )


async def test_credit_transactions_show_the_free_tier_and_grants_with_reasons(
    http: httpx.AsyncClient, org: Org
) -> None:
    await http.post(
        f"/admin/organizations/{org.org_id}/credit_grants",
        json={"spus": "7", "reason": "apology"},
    )

    data = (await http.get(f"/admin/organizations/{org.org_id}/credit_transactions")).json()

    assert [(item["kind"], item["spus"], item["reason"]) for item in data["data"]] == [
        ("grant", "7", "apology"),
        ("free_tier", "100", "free tier"),
    ]


async def test_a_hand_set_plan_adds_an_allowance_that_renews_locally(
    http: httpx.AsyncClient, org: Org, store: LedgerStore
) -> None:
    response = await http.put(
        f"/admin/organizations/{org.org_id}/plan",
        json={"allowance_spus": "1000", "period_days": 30},
    )

    body = response.json()
    assert response.status_code == 200
    assert body["renews_locally"] is True
    assert body["balance"]["plan"]["tier"] == "enterprise"
    assert body["balance"]["buckets"]["subscription"]["total"] == "1000"
    account = await store.get_account(org.org_id)
    assert account.period_start is not None and account.period_end is not None
    assert account.period_end - account.period_start == timedelta(days=30)
    assert account.subscription_allowance_units == spus_to_units(1000)


async def test_setting_the_plan_again_in_its_period_keeps_what_was_used(
    admin_gateway: RunningGateway, http: httpx.AsyncClient, org: Org, store: LedgerStore
) -> None:
    path = f"/admin/organizations/{org.org_id}/plan"
    await http.put(path, json={"allowance_spus": "1000"})
    await chat(admin_gateway, org.token)

    await http.put(path, json={"allowance_spus": "2000"})

    account = await store.get_account(org.org_id)
    assert account.subscription_used_units == CHAT_UNITS
    assert account.subscription_allowance_units == spus_to_units(2000)


async def test_ending_the_plan_lapses_the_allowance_and_keeps_granted_credits(
    http: httpx.AsyncClient, org: Org, store: LedgerStore
) -> None:
    path = f"/admin/organizations/{org.org_id}/plan"
    await http.put(path, json={"allowance_spus": "1000"})

    response = await http.delete(path)

    assert response.status_code == 200
    account = await store.get_account(org.org_id)
    assert account.subscription_left_units == 0
    assert account.granted_left_units == spus_to_units(100)


async def test_org_usage_totals_group_the_orgs_calls(
    admin_gateway: RunningGateway,
    http: httpx.AsyncClient,
    org: Org,
    upstream: FakeUpstream,
) -> None:
    await chat(admin_gateway, org.token)
    await chat(admin_gateway, org.token)

    by_model = (await http.get(f"/admin/organizations/{org.org_id}/usage")).json()
    by_key = (
        await http.get(f"/admin/organizations/{org.org_id}/usage", params={"group_by": "key"})
    ).json()

    assert by_model["data"] == [
        {
            "group": CHAT_MODEL,
            "calls": 2,
            "prompt_tokens": 34,
            "completion_tokens": 28,
            "total_tokens": 62,
            "cost_usd": by_model["data"][0]["cost_usd"],
            "spus": format_spus(2 * CHAT_UNITS),
        }
    ]
    assert [total["group"] for total in by_key["data"]] == [org.key_id]
    assert set(by_model) >= {"from", "to"}


async def test_a_usage_window_must_run_forwards(http: httpx.AsyncClient, org: Org) -> None:
    now = datetime.now(UTC)
    response = await http.get(
        f"/admin/organizations/{org.org_id}/usage",
        params={"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()},
    )

    assert response.status_code == 400


async def test_recent_usage_filters_by_org_and_model(
    admin_gateway: RunningGateway, http: httpx.AsyncClient, org: Org, store: LedgerStore
) -> None:
    other = await new_org(store)
    await chat(admin_gateway, org.token)
    await chat(admin_gateway, other.token)
    async with admin_gateway.client(org.token) as client:
        await client.embeddings.create(model=EMBEDDING_MODEL, input="hello")

    everyone = (await http.get("/admin/usage")).json()["data"]
    own = (await http.get("/admin/usage", params={"org_id": org.org_id})).json()["data"]
    own_chats = (
        await http.get("/admin/usage", params={"org_id": org.org_id, "model": CHAT_MODEL})
    ).json()["data"]
    latest = (await http.get("/admin/usage", params={"limit": 1})).json()["data"]

    assert len(everyone) == 3
    assert {record["org_id"] for record in own} == {org.org_id}
    assert len(own) == 2
    assert [(r["model"], r["spus"]) for r in own_chats] == [(CHAT_MODEL, format_spus(CHAT_UNITS))]
    assert latest == everyone[:1]


async def test_openapi_documents_the_admin_routes_with_their_models(
    http: httpx.AsyncClient,
) -> None:
    schema = (await http.get("/openapi.json")).json()

    grant = schema["paths"]["/admin/organizations/{org_id}/credit_grants"]["post"]
    assert grant["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GrantCreate"
    }
    assert "403" in grant["responses"]
    assert {"Organization", "AccessKeyCreated", "CreditGrant", "PlanSet", "ErrorBody"} <= set(
        schema["components"]["schemas"]
    )
