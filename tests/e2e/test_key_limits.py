"""A key's own limits through the admin API, the CLI's store and real SDK calls: a budget
refuses with 402 and a rate limit with 429 and Retry-After, both naming the limit in the
client's own error shape, and /metrics counts them by limit."""

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ledger import KeyLimits, LedgerStore, format_spus
from proxy.auth import issue_token
from tests.e2e.support import CHAT_MODEL, RunningGateway, StartGateway, expected_units, new_org

ADMIN_TOKEN = "admin-secret-for-key-limits"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Count my tokens."}]
CHAT_UNITS = expected_units(17, 14)


@pytest.fixture
def gateway(start_gateway: StartGateway) -> RunningGateway:
    return start_gateway(admin_token=ADMIN_TOKEN)


@pytest.fixture
async def admin(gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, headers=ADMIN) as client:
        yield client


def _openai_error(error: openai.APIStatusError) -> dict[str, Any]:
    """The error object of OpenAI's shape, read back from the raw answer."""
    body: dict[str, Any] = error.response.json()["error"]
    return body


async def _chat(gateway: RunningGateway, token: str) -> None:
    async with gateway.client(token) as client:
        await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=50)


async def test_a_key_budget_refuses_with_402_naming_it_and_counts_what_was_spent(
    gateway: RunningGateway, admin: httpx.AsyncClient, store: LedgerStore
) -> None:
    org = await new_org(store)
    created = await admin.post(
        f"/admin/organizations/{org.org_id}/keys",
        json={"name": "ci", "budget_spus": "0", "budget_period": "day", "rpm": 100},
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert (key["budget_spus"], key["budget_period"], key["rpm"], key["tpm"]) == (
        "0",
        "day",
        100,
        None,
    )
    assert key["budget"]["left_spus"] == "0"

    with pytest.raises(openai.APIStatusError) as refused:
        await _chat(gateway, key["token"])
    assert refused.value.status_code == 402
    error = _openai_error(refused.value)
    assert (error["limit_source"], error["code"]) == ("key_budget", "key_budget_exceeded")
    assert error["available_spus"] == "0" and error["resets_at"] is not None

    raised = await admin.patch(
        f"/admin/organizations/{org.org_id}/keys/{key['key_id']}", json={"budget_spus": "50"}
    )
    assert raised.status_code == 200, raised.text
    assert (raised.json()["budget_spus"], raised.json()["rpm"]) == ("50", 100)
    await _chat(gateway, key["token"])

    lowered = await admin.patch(
        f"/admin/organizations/{org.org_id}/keys/{key['key_id']}",
        json={"budget_spus": format_spus(CHAT_UNITS), "rpm": None},
    )
    assert lowered.json()["rpm"] is None
    with pytest.raises(openai.APIStatusError) as refused:
        await _chat(gateway, key["token"])
    assert _openai_error(refused.value)["limit_source"] == "key_budget"

    listed_keys = (await admin.get(f"/admin/organizations/{org.org_id}/keys")).json()["data"]
    [listed] = [listed for listed in listed_keys if listed["key_id"] == key["key_id"]]
    [unlimited] = [listed for listed in listed_keys if listed["key_id"] == org.key_id]
    assert (unlimited["budget_spus"], unlimited["budget"], unlimited["rpm"]) == (None, None, None)
    assert listed["budget"]["spent_spus"] == format_spus(CHAT_UNITS)
    assert (listed["budget"]["left_spus"], listed["budget"]["held_spus"]) == ("0", "0")
    metrics = (await admin.get("/metrics")).text
    assert 'spu_limit_refusals_total{limit_source="key_budget",model="gpt-4o-mini"} 2.0' in metrics


async def test_rpm_refuses_with_429_and_retry_after_in_either_clients_shape(
    gateway: RunningGateway, admin: httpx.AsyncClient, store: LedgerStore
) -> None:
    org = await new_org(store)
    key = (await admin.post(f"/admin/organizations/{org.org_id}/keys", json={"rpm": 2})).json()
    await _chat(gateway, key["token"])
    await _chat(gateway, key["token"])

    with pytest.raises(openai.RateLimitError) as limited:
        await _chat(gateway, key["token"])
    assert _openai_error(limited.value)["limit_source"] == "key_rpm"
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60

    client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key["token"], max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as limited_messages:
        await client.messages.create(
            model=CHAT_MODEL, max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
    body = limited_messages.value.body
    assert body["type"] == "error"  # type: ignore[index]
    assert body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert body["error"]["limit_source"] == "key_rpm"  # type: ignore[index]
    assert "retry-after" in limited_messages.value.response.headers


async def test_a_call_bigger_than_tpm_is_told_not_to_retry(
    gateway: RunningGateway, admin: httpx.AsyncClient, store: LedgerStore
) -> None:
    org = await new_org(store)
    key = (await admin.post(f"/admin/organizations/{org.org_id}/keys", json={"tpm": 40})).json()

    with pytest.raises(openai.RateLimitError) as limited:
        await _chat(gateway, key["token"])

    assert _openai_error(limited.value)["limit_source"] == "key_tpm"
    assert limited.value.response.headers["x-should-retry"] == "false"


async def test_limits_are_checked_and_unknown_keys_are_404(
    admin: httpx.AsyncClient, store: LedgerStore
) -> None:
    org = await new_org(store)
    keys = f"/admin/organizations/{org.org_id}/keys"

    for bad in (
        {"budget_spus": "-1"},
        {"budget_spus": "0.0000001"},
        {"rpm": 0},
        {"budget_period": "year"},
    ):
        answer = await admin.post(keys, json=bad)
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.json()["error"]["param"] in {"budget_spus", "rpm", "budget_period"}
    missing = await admin.patch(f"{keys}/key_missing", json={"rpm": 5})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "access_key_not_found")
    no_org = await admin.patch("/admin/organizations/org-missing/keys/key_1", json={"rpm": 5})
    assert no_org.json()["error"]["code"] == "organization_not_found"


async def test_responses_calls_are_refused_by_key_limits_in_openais_shape(
    agents_gateway: RunningGateway, store: LedgerStore
) -> None:
    org = await new_org(store)
    key = (await issue_token(store, org.org_id, limits=KeyLimits(budget_units=0)))[0]

    async with agents_gateway.client(key) as client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.responses.create(model="spu-demo", input="Hello")

    assert refused.value.status_code == 402
    assert _openai_error(refused.value)["limit_source"] == "key_budget"
