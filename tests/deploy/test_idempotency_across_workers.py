"""One ``Idempotency-Key`` sent at once to three worker processes, streamed and not: one call
runs and is charged, the others are told it is in flight (409), and every later retry, on
whichever worker, gets its reply byte for byte at no charge (a stream without its receipt
comment, the first call's). The key lives in the store."""

import asyncio
import re
from collections import Counter
from pathlib import Path

import httpx

from ledger.factory import open_store
from ledger.verify import verify
from tests.deploy.processes import Org, chat_body, running_gateway, seed_orgs

WORKERS = 3
AT_ONCE = 9
RETRIES_AFTER = 6
RECEIPT_COMMENT = re.compile(rb": spu_charged=[^\n]*\n\n")
WORD_DELAY_MS = 40
"""Streams take about 1.3 s: long enough for every concurrent request to find one in flight."""


async def _send(gateway_url: str, org: Org, key: str, stream: bool) -> httpx.Response:
    """One request on a connection of its own, so the kernel may hand it to any worker."""
    headers = {"authorization": f"Bearer {org.token}", "idempotency-key": key}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        response = await client.post(
            "/v1/chat/completions",
            json=chat_body(max_tokens=200, stream=stream, prompt_words=3),
            headers=headers,
        )
        await response.aread()
        return response


async def _one_key_at_once(gateway_url: str, org: Org, stream: bool) -> httpx.Response:
    """The burst and the retries of one key; returns the one response that ran the call."""
    key = f"one-call-{'streamed' if stream else 'plain'}"
    at_once = await asyncio.gather(*(_send(gateway_url, org, key, stream) for _ in range(AT_ONCE)))
    retries = [await _send(gateway_url, org, key, stream) for _ in range(RETRIES_AFTER)]

    ran = [r for r in at_once if r.status_code == 200 and "idempotent-replayed" not in r.headers]
    assert len(ran) == 1, [(r.status_code, r.text[:80]) for r in at_once]
    [original] = ran
    others = Counter(
        "replayed" if r.status_code == 200 else r.json()["error"]["code"]
        for r in at_once
        if r is not original
    )
    assert set(others) <= {"idempotency_key_in_flight", "replayed"}, others
    assert sum(others.values()) == AT_ONCE - 1
    if stream:
        assert others["idempotency_key_in_flight"] > 0, others
    for retry in [*retries, *(r for r in at_once if r.status_code == 200 and r is not original)]:
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.headers["x-request-id"] == original.headers["x-request-id"]
        assert retry.content == RECEIPT_COMMENT.sub(b"", original.content)
    if stream:
        assert RECEIPT_COMMENT.search(original.content)
    return original


async def test_one_key_at_once_on_three_workers_runs_one_call_and_replays_it_everywhere(
    ledger_url: str, tmp_path: Path
) -> None:
    [org] = await seed_orgs(ledger_url, {"org_retrying": 10.0})
    with running_gateway(
        ledger_url, tmp_path, workers=WORKERS, demo_stream_delay_ms=WORD_DELAY_MS
    ) as gateway:
        assert len(gateway.workers()) == WORKERS
        originals = [
            await _one_key_at_once(gateway.base_url, org, stream) for stream in (False, True)
        ]
        assert gateway.stop() == 0, gateway.log()

    store = open_store(ledger_url)
    await store.open()
    try:
        records = await store.usage_records(org.org_id)
        assert sorted(record.request_id for record in records) == sorted(
            original.headers["x-request-id"] for original in originals
        )
        balance = await store.balance(org.org_id)
        assert balance.held_units == 0
        assert balance.available_units == org.grant_units - sum(r.charged_units for r in records)
        assert (await verify(store))[1] == []
    finally:
        await store.close()
