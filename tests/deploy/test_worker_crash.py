"""SIGKILL a worker mid-stream: its holds expire, the sweep ends them, the ledger verifies clean
(on a SQLite file and on a PostgreSQL database).

A killed worker settles nothing, so its streams' holds stay open in the store.
They carry an expiry (``SPU_HOLD_TTL_S``): past it they stop counting against
the balance, and the sweep (every ``SPU_SWEEP_INTERVAL_S``, in every worker,
including the one the supervisor starts in the dead one's place) marks them
expired. Streams on the other worker (the kernel decides how many land
there, perhaps none) are untouched.
"""

import asyncio
import os
import signal
import time
from pathlib import Path

from ledger.factory import open_store
from ledger.verify import verify
from tests.deploy.processes import (
    chat_body,
    established_connections,
    hold_states,
    running_gateway,
    seed_orgs,
    start_streams,
)

STREAMS = 12
WORD_DELAY_MS = 100
STREAM_WORDS = 15
"""1.5 s per stream: well inside the hold TTL, so surviving streams settle before it."""
HOLD_TTL_S = 4
SWEEP_INTERVAL_S = 0.5
CLIENT_TIMEOUT_S = 20.0
RESPAWN_TIMEOUT_S = 20.0
SETTLE_TIMEOUT_S = 2.0
"""Well under the hold TTL: a survivor still open after it would be the bug, not the expiry."""


def _wait_for_open_holds(ledger_url: str, count: int, timeout_s: float) -> dict[str, int]:
    """The hold states once exactly ``count`` holds are open (settling runs after a stream ends)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = hold_states(ledger_url)
        if states.get("open", 0) == count:
            return states
        time.sleep(0.05)
    raise AssertionError(f"not {count} open holds after {timeout_s} s: {hold_states(ledger_url)}")


async def test_a_killed_workers_holds_are_swept_after_expiry_and_the_ledger_verifies_clean(
    ledger_url: str, tmp_path: Path
) -> None:
    [org] = await seed_orgs(ledger_url, {"org_crash": 100})

    with running_gateway(
        ledger_url,
        tmp_path,
        workers=2,
        demo_stream_delay_ms=WORD_DELAY_MS,
        hold_ttl_s=HOLD_TTL_S,
        sweep_interval_s=SWEEP_INTERVAL_S,
    ) as gateway:
        async with gateway.client(timeout_s=CLIENT_TIMEOUT_S, max_connections=STREAMS) as client:
            body = chat_body(max_tokens=STREAM_WORDS, stream=True, prompt_words=STREAM_WORDS)
            async with asyncio.timeout(CLIENT_TIMEOUT_S):
                streams = await start_streams(client, org, [body] * STREAMS)
                serving = {
                    pid: established_connections(pid, gateway.port) for pid in gateway.workers()
                }
                victim = max(serving, key=lambda pid: serving[pid])
                os.kill(victim, signal.SIGKILL)
                ends = await asyncio.gather(*streams)

        killed_streams = [end.complete for end in ends].count(False)
        assert killed_streams == serving[victim] > 0
        # The survivors settle; the dead worker's holds stay open until they expire.
        _wait_for_open_holds(ledger_url, killed_streams, SETTLE_TIMEOUT_S)

        gateway.wait_for_workers(2, excluding={victim}, timeout_s=RESPAWN_TIMEOUT_S)
        states = _wait_for_open_holds(ledger_url, 0, HOLD_TTL_S + RESPAWN_TIMEOUT_S)
        expected = {"settled": STREAMS - killed_streams, "expired": killed_streams}
        assert states == {state: count for state, count in expected.items() if count}

        async with gateway.client(timeout_s=CLIENT_TIMEOUT_S) as client:
            reply = await client.post(
                "/v1/chat/completions",
                json=chat_body(max_tokens=5, stream=False),
                headers={"authorization": f"Bearer {org.token}"},
            )
            assert reply.status_code == 200
        assert gateway.stop() == 0, gateway.log()

    store = open_store(ledger_url)
    await store.open()
    try:
        assert await verify(store) == (1, [])
        balance = await store.balance(org.org_id)
        assert balance.held_units == 0
        records = await store.usage_records(org.org_id)
        assert len(records) == STREAMS - killed_streams + 1
        assert balance.account.net_balance_units == org.grant_units - sum(
            record.charged_units for record in records
        )
    finally:
        await store.close()
