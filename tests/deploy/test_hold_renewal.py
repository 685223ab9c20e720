"""Streams that outlive their hold's time to live are charged exactly once (issue 11).

With ``SPU_HOLD_TTL_S=2`` and streams of more than 5 s, each hold would expire
twice over: the worker renews it while the stream runs, so at 3 s every hold
is still open and counting (the sweep, every 0.5 s, finds nothing to expire),
and at the end every stream has exactly one usage record, no hold is left open
and the ledger verifies clean.
"""

import asyncio
import time
from pathlib import Path

from ledger import UsageRecord
from ledger.factory import open_store
from ledger.verify import verify
from tests.deploy.processes import chat_body, hold_states, running_gateway, seed_orgs, start_streams

STREAMS = 5
HOLD_TTL_S = 2
STREAM_S = 5.0
WORD_DELAY_MS = 180
"""The demo streams one word every 0.18 s: its reply and five echoed words take over 5 s."""


async def test_streams_longer_than_the_hold_ttl_each_settle_once_and_leave_no_hold(
    ledger_url: str, tmp_path: Path
) -> None:
    [org] = await seed_orgs(ledger_url, {"org_long_streams": 10.0})
    store = open_store(ledger_url)
    await store.open()
    try:
        with running_gateway(
            ledger_url,
            tmp_path,
            workers=2,
            hold_ttl_s=HOLD_TTL_S,
            sweep_interval_s=0.5,
            demo_stream_delay_ms=WORD_DELAY_MS,
        ) as gateway:
            async with gateway.client(timeout_s=30) as client:
                started_s = time.monotonic()
                bodies = [chat_body(max_tokens=200, stream=True) for _ in range(STREAMS)]
                streams = await start_streams(client, org, bodies)
                await asyncio.sleep(HOLD_TTL_S * 1.5)
                held_meanwhile = (await store.balance(org.org_id)).held_units
                states_meanwhile = hold_states(ledger_url)
                ends = await asyncio.gather(*streams)
                lasted_s = time.monotonic() - started_s
            assert gateway.stop() == 0, gateway.log()

        assert lasted_s >= STREAM_S
        assert states_meanwhile == {"open": STREAMS}
        assert held_meanwhile > 0
        assert all(end.complete for end in ends), ends
        records: list[UsageRecord] = await store.usage_records(org.org_id)
        assert sorted(record.request_id for record in records) == sorted(
            end.request_id for end in ends
        )
        assert {record.details.status for record in records} == {"ok"}
        assert hold_states(ledger_url) == {"settled": STREAMS}
        assert (await store.balance(org.org_id)).held_units == 0
        assert (await verify(store))[1] == []
    finally:
        await store.close()
