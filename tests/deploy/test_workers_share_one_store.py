"""Three worker processes on one store (a SQLite file, a PostgreSQL database) stay exactly right
under 300 concurrent requests.

All coordination is in the store: each hold is one atomic check-and-reserve,
whichever worker places it, so three orgs with small balances hammering three
workers at once can be refused (402) but never overdrawn, and every answered
call is debited exactly once with one usage record.
"""

import asyncio
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx

from ledger import UNITS_PER_SPU
from ledger.factory import open_store
from ledger.verify import verify
from tests.deploy.processes import (
    Org,
    chat_body,
    hold_states,
    running_gateway,
    seed_orgs,
)

WORKERS = 3
REQUESTS_PER_ORG = 100
GRANTS_SPUS = {"org_small": 0.3, "org_medium": 0.5, "org_large": 0.7}
"""Each below what 100 demo calls cost (~0.008 SPU each), so every org is refused some
calls whatever the timing, and each can afford a few even while 100 worst-case holds race."""
BURST_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Outcome:
    org_id: str
    status: int
    request_id: str
    """Empty when the gateway sent none (it sends one with every answered call)."""
    charged_units: int | None
    stream: bool
    complete: bool
    error_code: str | None


async def _call(client: httpx.AsyncClient, org: Org, index: int) -> Outcome:
    stream = index % 4 == 0
    headers = {"authorization": f"Bearer {org.token}"}
    body = chat_body(max_tokens=200, stream=stream)
    async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as reply:
        raw = await reply.aread()
    charged = reply.headers.get("x-spu-charged")
    error_code = None
    if reply.status_code != 200:
        error_code = reply.json()["error"]["code"]
    return Outcome(
        org_id=org.org_id,
        status=reply.status_code,
        request_id=reply.headers.get("x-request-id", ""),
        charged_units=None if charged is None else int(Decimal(charged) * UNITS_PER_SPU),
        stream=stream,
        complete=raw.endswith(b"data: [DONE]\n\n") if stream else raw.startswith(b"{"),
        error_code=error_code,
    )


async def test_three_workers_on_one_store_never_overdraw_and_record_every_answered_call(
    ledger_url: str, tmp_path: Path
) -> None:
    orgs = await seed_orgs(ledger_url, GRANTS_SPUS)

    with running_gateway(
        ledger_url,
        tmp_path,
        workers=WORKERS,
        max_in_flight_per_org=REQUESTS_PER_ORG,
    ) as gateway:
        workers = gateway.workers()
        assert len(workers) == WORKERS
        limits = httpx.Limits(max_connections=WORKERS * REQUESTS_PER_ORG)
        async with httpx.AsyncClient(
            base_url=gateway.base_url, limits=limits, timeout=BURST_TIMEOUT_S
        ) as client:
            async with asyncio.timeout(BURST_TIMEOUT_S):
                outcomes = await asyncio.gather(
                    *(
                        _call(client, org, index)
                        for index in range(REQUESTS_PER_ORG)
                        for org in orgs
                    )
                )
        assert gateway.stop() == 0, gateway.log()

    statuses = Counter(outcome.status for outcome in outcomes)
    assert set(statuses) <= {200, 402}, statuses
    assert statuses[402] > 0 and statuses[200] > 0, statuses
    refused = [outcome for outcome in outcomes if outcome.status == 402]
    assert {outcome.error_code for outcome in refused} == {"insufficient_credits"}
    answered = [outcome for outcome in outcomes if outcome.status == 200]
    assert all(outcome.complete for outcome in answered)

    store = open_store(ledger_url)
    await store.open()
    try:
        checked, problems = await verify(store)
        assert (checked, problems) == (len(orgs), [])
        assert "open" not in hold_states(ledger_url)
        figures = {figure.account.org_id: figure for figure in await store.ledger_figures()}
        for org in orgs:
            mine = [outcome for outcome in answered if outcome.org_id == org.org_id]
            assert mine, f"{org.org_id} was never served"
            assert any(outcome.org_id == org.org_id for outcome in refused)
            records = await store.usage_records(org.org_id, limit=10 * REQUESTS_PER_ORG)
            assert {record.request_id for record in records} == {o.request_id for o in mine}
            charged = {record.request_id: record.charged_units for record in records}
            for outcome in mine:
                if outcome.charged_units is not None:
                    assert charged[outcome.request_id] == outcome.charged_units
            org_figures = figures[org.org_id]
            assert org_figures.debited_units == sum(charged.values())
            assert 0 < org_figures.debited_units <= org.grant_units
            assert org_figures.account.net_balance_units == org.grant_units - sum(charged.values())
            assert org_figures.account.net_balance_units >= 0
    finally:
        await store.close()
