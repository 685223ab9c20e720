"""100 concurrent streamed ``/v1/responses`` calls on credit for 40, across two worker processes,
on each SQL store (a SQLite file, a PostgreSQL database).

Every call holds the same worst case (its prompt estimate and the output bound,
at the demo model's prices). The org's credit covers 40 of those holds and
half of a 41st. The demo streams slowly enough that every call has been
answered (200 or 402) before the first stream ends, so no hold is ever freed
while others are still being placed: exactly 40 calls run, to a completed
Response, and the other 60 are refused with 402. Each run is debited once, at
what the demo reported; the ledger verifies clean and no hold is left open.
"""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import httpx
import orjson

from ledger.factory import open_store
from ledger.verify import verify
from pricing import chat_prompt_tokens
from tests.deploy.processes import DEMO_MODEL, Org, hold_states, running_gateway, seed_orgs

WORKERS = 2
CALLS = 100
AFFORDABLE = 40
MAX_OUTPUT_TOKENS = 500
INPUT = "Stream me a short story about a careful ledger."
DEMO_INPUT_USD = Decimal("0.0000005")
DEMO_OUTPUT_USD = Decimal("0.0000015")
MARKUP = Decimal("0.25")
USD_PER_SPU = Decimal("0.01")
STREAM_DELAY_MS = 60
"""Between the demo's streamed words: a stream lasts about two seconds."""
BURST_TIMEOUT_S = 60.0


def units(cost_usd: Decimal) -> int:
    spus = cost_usd * (1 + MARKUP) / USD_PER_SPU
    return int((spus * 1_000_000).to_integral_value(ROUND_CEILING))


@dataclass(frozen=True)
class Outcome:
    status: int
    request_id: str
    answered_at: float
    ended_at: float
    completed: bool
    error_code: str | None


async def _call(client: httpx.AsyncClient, org: Org) -> Outcome:
    body = {
        "model": DEMO_MODEL,
        "input": INPUT,
        "max_output_tokens": MAX_OUTPUT_TOKENS,
        "stream": True,
    }
    headers = {"authorization": f"Bearer {org.token}"}
    async with client.stream("POST", "/v1/responses", json=body, headers=headers) as reply:
        answered_at = time.monotonic()
        raw = await reply.aread()
    error_code = None if reply.status_code == 200 else orjson.loads(raw)["error"]["code"]
    return Outcome(
        status=reply.status_code,
        request_id=reply.headers.get("x-request-id", ""),
        answered_at=answered_at,
        ended_at=time.monotonic(),
        completed=b"event: response.completed\n" in raw,
        error_code=error_code,
    )


async def test_100_concurrent_response_streams_on_credit_for_40_run_exactly_40(
    ledger_url: str, tmp_path: Path
) -> None:
    # Each call is held for its prompt's cheap bound (the org can afford 40 of those).
    prompt_tokens = chat_prompt_tokens([{"role": "user", "content": INPUT}], DEMO_MODEL).bound
    hold_units = units(prompt_tokens * DEMO_INPUT_USD + MAX_OUTPUT_TOKENS * DEMO_OUTPUT_USD)
    grant_spus = (AFFORDABLE * hold_units + hold_units // 2) / 1_000_000
    [org] = await seed_orgs(ledger_url, {"org_agents": grant_spus})
    assert AFFORDABLE * hold_units < org.grant_units < (AFFORDABLE + 1) * hold_units

    with running_gateway(
        ledger_url,
        tmp_path,
        workers=WORKERS,
        max_in_flight_per_org=CALLS,
        demo_stream_delay_ms=STREAM_DELAY_MS,
    ) as gateway:
        async with gateway.client(timeout_s=BURST_TIMEOUT_S, max_connections=CALLS) as client:
            async with asyncio.timeout(BURST_TIMEOUT_S):
                outcomes = await asyncio.gather(*(_call(client, org) for _ in range(CALLS)))
        assert gateway.stop() == 0, gateway.log()

    ran = [outcome for outcome in outcomes if outcome.status == 200]
    first_end = min(outcome.ended_at for outcome in ran)
    assert max(outcome.answered_at for outcome in outcomes) < first_end, (
        "a stream ended before every call was answered: the burst did not overlap"
    )
    assert Counter(outcome.status for outcome in outcomes) == {
        200: AFFORDABLE,
        402: CALLS - AFFORDABLE,
    }
    assert all(outcome.completed for outcome in ran)
    assert {o.error_code for o in outcomes if o.status == 402} == {"insufficient_credits"}

    store = open_store(ledger_url)
    await store.open()
    try:
        assert await verify(store) == (1, [])
        assert "open" not in hold_states(ledger_url)
        records = await store.usage_records(org.org_id, limit=2 * CALLS)
        assert {record.request_id for record in records} == {o.request_id for o in ran}
        for record in records:
            details = record.details
            assert (details.operation, details.status) == ("responses", "ok")
            assert record.charged_units == units(
                details.prompt_tokens * DEMO_INPUT_USD + details.completion_tokens * DEMO_OUTPUT_USD
            )
            assert record.charged_units <= hold_units
        debited = sum(record.charged_units for record in records)
        balance = await store.balance(org.org_id)
        assert balance.account.net_balance_units == org.grant_units - debited >= 0
    finally:
        await store.close()
