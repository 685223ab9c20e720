"""The usage page's JSON and files: its summary, signed links, and what links may not do."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ledger import BudgetPeriod, KeyLimits, LedgerStore, format_spus, spus_to_units
from proxy.auth import issue_token
from tests.e2e.support import CHAT_MODEL, Org, RunningGateway, StartGateway, expected_units
from tests.fakes.upstream import FakeUpstream

ADMIN_TOKEN = "admin-secret-for-tests"
PUBLIC_URL = "https://gateway.example.test"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Count my tokens."}]
CHAT_UNITS = expected_units(17, 14)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def page_gateway(start_gateway: StartGateway) -> RunningGateway:
    return start_gateway(admin_token=ADMIN_TOKEN, public_url=PUBLIC_URL)


@pytest.fixture
async def http(page_gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=page_gateway.url) as client:
        yield client


async def chat(gateway: RunningGateway, token: str) -> None:
    async with gateway.client(token) as client:
        await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)


async def link_token(http: httpx.AsyncClient, org: Org, **body: int) -> str:
    response = await http.post("/v1/usage/link", json=body or None, headers=bearer(org.token))
    assert response.status_code == 200, response.text
    return str(response.json()["url"]).split("#link=", 1)[1]


async def test_the_summary_shows_the_ledger_balance_daily_totals_and_recent_calls(
    page_gateway: RunningGateway,
    http: httpx.AsyncClient,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
) -> None:
    await chat(page_gateway, org.token)
    await chat(page_gateway, org.token)

    summary = (await http.get("/v1/usage/summary", headers=bearer(org.token))).json()
    balance = (await http.get("/v1/balance", headers=bearer(org.token))).json()

    records = await store.usage_records(org.org_id)
    today = datetime.now(UTC).date().isoformat()
    assert summary["balance"] == balance
    assert summary["period"] == {"start": None, "end": None, "days_left": None}
    assert len(summary["daily"]["days"]) == 30
    assert summary["daily"]["days"][-1] == today
    assert [
        (row["day"], row["model"], row["calls"], row["spus"]) for row in summary["daily"]["data"]
    ] == [(today, CHAT_MODEL, 2, format_spus(2 * CHAT_UNITS))]
    assert [call["request_id"] for call in summary["recent"]] == [r.request_id for r in records]
    assert summary["via_link"] is False


async def test_an_enterprise_period_sets_the_chart_window_and_days_left(
    http: httpx.AsyncClient, org: Org
) -> None:
    await http.put(
        f"/admin/organizations/{org.org_id}/plan",
        json={"allowance_spus": "500", "period_days": 30},
        headers=bearer(ADMIN_TOKEN),
    )

    summary = (await http.get("/v1/usage/summary", headers=bearer(org.token))).json()

    assert summary["period"]["days_left"] == 30
    assert summary["daily"]["from"] == summary["period"]["start"]
    assert len(summary["daily"]["days"]) == 31
    assert summary["balance"]["buckets"]["subscription"]["left"] == "500"


async def test_the_recent_calls_are_bounded(http: httpx.AsyncClient, org: Org) -> None:
    response = await http.get(
        "/v1/usage/summary", params={"recent": 1000}, headers=bearer(org.token)
    )

    assert response.status_code == 400


async def test_a_signed_link_opens_the_orgs_summary_read_only(
    http: httpx.AsyncClient, org: Org
) -> None:
    response = await http.post("/v1/usage/link", headers=bearer(org.token))
    link = await link_token(http, org)

    summary = await http.get("/v1/usage/summary", headers=bearer(link))
    balance = await http.get("/v1/balance", headers=bearer(link))
    another_link = await http.post("/v1/usage/link", headers=bearer(link))

    assert response.json()["url"].startswith(f"{PUBLIC_URL}/usage#link=spulink_")
    assert summary.status_code == 200
    assert summary.json()["org_id"] == org.org_id
    assert summary.json()["via_link"] is True
    assert balance.status_code == 401
    assert another_link.status_code == 401


async def test_a_tampered_link_is_refused(http: httpx.AsyncClient, org: Org) -> None:
    link = await link_token(http, org)
    tampered = link[:-2] + ("AA" if not link.endswith("AA") else "BB")

    response = await http.get("/v1/usage/summary", headers=bearer(tampered))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_usage_link"


async def test_a_link_made_by_one_worker_opens_on_another_with_the_same_admin_token(
    start_gateway: StartGateway, http: httpx.AsyncClient, org: Org
) -> None:
    other_worker = start_gateway(admin_token=ADMIN_TOKEN)
    link = await link_token(http, org)

    async with httpx.AsyncClient(base_url=other_worker.url) as client:
        response = await client.get("/v1/usage/summary", headers=bearer(link))

    assert response.json()["org_id"] == org.org_id


@pytest.mark.parametrize("ttl_s", [10, 7 * 24 * 3600])
async def test_a_links_lifetime_is_bounded(http: httpx.AsyncClient, org: Org, ttl_s: int) -> None:
    response = await http.post("/v1/usage/link", json={"ttl_s": ttl_s}, headers=bearer(org.token))

    assert response.status_code == 400


async def test_the_summary_needs_a_token_or_link(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/usage/summary")).status_code == 401
    assert (await http.get("/v1/usage/summary", headers=bearer("spu_wrong"))).status_code == 401


async def test_local_only_mode_hides_billing(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/usage/config")).json() == {"stripe": False}


async def test_the_page_is_served_with_a_strict_content_security_policy(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/usage")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<canvas id="daily-chart"' in page.text


async def test_only_the_pages_own_assets_are_served(http: httpx.AsyncClient) -> None:
    chart = await http.get("/usage/assets/chart.umd.min.js")
    script = await http.get("/usage/assets/usage.js")

    assert chart.status_code == 200
    assert chart.text.startswith("/*!\n * Chart.js v4")
    assert script.headers["content-type"].startswith("text/javascript")
    for name in ("usage.html", "vendor%2Fchart.umd.min.js", "..%2F..%2Fsettings.py", "nope.js"):
        assert (await http.get(f"/usage/assets/{name}")).status_code == 404


async def test_the_summary_shows_each_limited_keys_budget_use_and_the_alert_state(
    page_gateway: RunningGateway, http: httpx.AsyncClient, org: Org, store: LedgerStore
) -> None:
    limits = KeyLimits(spus_to_units(1), BudgetPeriod.DAY, rpm=100)
    token, key = await issue_token(store, org.org_id, name="ci", limits=limits)
    await chat(page_gateway, token)
    await store.set_alerts(org.org_id, "https://hooks.example.test/secret-path", [10], "whsec_x")

    controls = (await http.get("/v1/usage/summary", headers=bearer(org.token))).json()[
        "spend_controls"
    ]

    [shown] = controls["keys"]
    assert (shown["key_id"], shown["budget_spus"], shown["budget_period"], shown["rpm"]) == (
        key.key_id,
        "1",
        "day",
        100,
    )
    assert shown["budget"]["spent_spus"] == format_spus(CHAT_UNITS)
    assert shown["budget"]["window_end"] is not None
    assert controls["alerts"] == {"thresholds_spus": ["0.00001"], "recent": []}
    assert controls["auto_recharge"] is None
    assert "secret-path" not in str(controls) and "whsec_x" not in str(controls)
