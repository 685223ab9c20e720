"""``/v1/balance`` and ``/v1/usage``: the token holder's own figures, never another org's."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from ledger import LedgerStore, format_spus, spus_to_units
from proxy.auth import issue_token
from tests.e2e.support import (
    CHAT_MODEL,
    EMBEDDING_MODEL,
    Org,
    RunningGateway,
    expected_units,
    new_org,
    wait_for_records,
)
from tests.fakes.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Count my tokens."}]
CHAT_UNITS = expected_units(17, 14)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def chat(gateway: RunningGateway, token: str, model: str = CHAT_MODEL) -> None:
    async with gateway.client(token) as client:
        if model == EMBEDDING_MODEL:
            await client.embeddings.create(model=model, input="hello")
        else:
            await client.chat.completions.create(model=model, messages=MESSAGES)


async def settled(store: LedgerStore, org_id: str, calls: int) -> None:
    """Answers return before their debit commits; wait for the ledger to catch up."""
    assert len(await wait_for_records(store, org_id, calls)) == calls


async def test_balance_shows_the_buckets_after_a_call(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    await chat(gateway, org.token)
    await settled(store, org.org_id, 1)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get("/v1/balance", headers=bearer(org.token))
    assert response.status_code == 200
    body = response.json()
    left = spus_to_units(Decimal(100)) - CHAT_UNITS
    assert body["org_id"] == org.org_id
    assert body["available_spus"] == format_spus(left)
    assert body["held_spus"] == "0"
    assert body["buckets"]["granted"] == {
        "total": "100",
        "used": format_spus(CHAT_UNITS),
        "left": format_spus(left),
    }


async def test_usage_lists_own_records_and_groups_by_model_key_and_day(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    second_token, second_key = await issue_token(store, org.org_id, name="second")
    other = await new_org(store)
    await chat(gateway, org.token)
    await chat(gateway, org.token)
    await chat(gateway, second_token)
    await chat(gateway, org.token, EMBEDDING_MODEL)
    await chat(gateway, other.token)
    await settled(store, org.org_id, 4)
    await settled(store, other.org_id, 1)

    async with httpx.AsyncClient(base_url=gateway.url, headers=bearer(org.token)) as http:
        records = (await http.get("/v1/usage")).json()["data"]
        by_model = (await http.get("/v1/usage", params={"group_by": "model"})).json()["data"]
        by_key = (await http.get("/v1/usage", params={"group_by": "key"})).json()["data"]
        by_day = (await http.get("/v1/usage", params={"group_by": "day"})).json()["data"]
        past = datetime.now(UTC) - timedelta(days=2)
        window = {"from": past.isoformat(), "to": (past + timedelta(days=1)).isoformat()}
        empty = (await http.get("/v1/usage", params=window)).json()["data"]
        invalid = await http.get("/v1/usage", params={"group_by": "colour"})

    assert len(records) == 4
    assert {record["org_id"] for record in records} == {org.org_id}
    assert {record["key_id"] for record in records} == {org.key_id, second_key.key_id}
    chat_record = next(record for record in records if record["model"] == CHAT_MODEL)
    assert chat_record["spus"] == format_spus(CHAT_UNITS)
    assert (chat_record["prompt_tokens"], chat_record["completion_tokens"]) == (17, 14)

    calls_by_model = {group["model"]: group["calls"] for group in by_model}
    assert calls_by_model == {CHAT_MODEL: 3, EMBEDDING_MODEL: 1}
    chat_group = next(group for group in by_model if group["model"] == CHAT_MODEL)
    assert chat_group["spus"] == format_spus(3 * CHAT_UNITS)
    assert {group["key"]: group["calls"] for group in by_key} == {
        org.key_id: 3,
        second_key.key_id: 1,
    }
    assert [(group["day"], group["calls"]) for group in by_day] == [
        (datetime.now(UTC).strftime("%Y-%m-%d"), 4)
    ]
    assert empty == []
    assert invalid.status_code == 400
    assert set(invalid.json()) == {"error"}


async def test_another_orgs_token_sees_only_its_own_balance_and_usage(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    other = await new_org(store, spus=7)
    await chat(gateway, org.token)
    await settled(store, org.org_id, 1)
    async with httpx.AsyncClient(base_url=gateway.url, headers=bearer(other.token)) as http:
        balance = (await http.get("/v1/balance")).json()
        usage = (await http.get("/v1/usage")).json()
    assert balance["org_id"] == other.org_id
    assert balance["available_spus"] == "7"
    assert usage["data"] == []


async def test_balance_and_usage_need_a_valid_token(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for path in ("/v1/balance", "/v1/usage"):
            response = await http.get(path, headers=bearer("spu_wrong"))
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "invalid_api_key"
