"""rpm across worker processes: three workers on one store, a key with ``rpm: 30``, 100 calls
within a few seconds: exactly 30 are admitted (all inside one minute), every other call is a
429 naming ``key_rpm`` with Retry-After, and no 60-second span of the ledger's holds holds more
than 30 (on a SQLite file and on a PostgreSQL database)."""

import asyncio
from pathlib import Path

import httpx

from ledger import KeyLimits
from ledger.factory import open_store
from proxy.auth import issue_token
from tests.deploy.processes import chat_body, running_gateway, seed_orgs
from tests.stores import query

RPM = 30
CALLS = 100
SPREAD_S = 3.0
"""The calls start evenly over this long: well inside the minute rpm counts over."""
WINDOW_MS = 60_000


async def _limited_token(ledger_url: str, org_id: str) -> str:
    store = open_store(ledger_url)
    await store.open()
    try:
        token, _ = await issue_token(store, org_id, name="rpm", limits=KeyLimits(rpm=RPM))
        return token
    finally:
        await store.close()


async def _call(client: httpx.AsyncClient, token: str, delay_s: float) -> httpx.Response:
    await asyncio.sleep(delay_s)
    return await client.post(
        "/v1/chat/completions",
        json=chat_body(max_tokens=5, stream=False),
        headers={"authorization": f"Bearer {token}"},
    )


async def test_three_workers_admit_at_most_rpm_calls_in_any_minute(
    ledger_url: str, tmp_path: Path
) -> None:
    [org] = await seed_orgs(ledger_url, {"org_rpm": 1000})
    token = await _limited_token(ledger_url, org.org_id)

    with running_gateway(ledger_url, tmp_path, workers=3) as gateway:
        async with gateway.client(timeout_s=30.0) as client:
            answers = await asyncio.gather(
                *(_call(client, token, n * SPREAD_S / CALLS) for n in range(CALLS))
            )

    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) == RPM, statuses
    refused = [answer for answer in answers if answer.status_code != 200]
    assert {answer.status_code for answer in refused} == {429}
    assert {answer.json()["error"]["limit_source"] for answer in refused} == {"key_rpm"}
    assert all(1 <= int(answer.headers["retry-after"]) <= 60 for answer in refused)

    placed = sorted(
        int(at_ms)
        for (at_ms,) in query(
            ledger_url, "SELECT created_at_ms FROM holds WHERE tokens IS NOT NULL"
        )
    )
    assert len(placed) == RPM
    busiest = max(
        sum(1 for other in placed if start <= other < start + WINDOW_MS) for start in placed
    )
    assert busiest <= RPM
