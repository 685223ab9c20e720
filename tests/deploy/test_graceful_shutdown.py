"""SIGTERM during 20 streams: new connections refused, streams drain or end cleanly, no hold open.

Streams shorter than the grace period (``SPU_SHUTDOWN_GRACE_S``) finish whole;
longer ones are cut at the deadline and still pay for what they streamed. The
gateway then exits with no hold left open and the ledger conserved.
"""

import asyncio
import signal
import time
from pathlib import Path

import httpx

from ledger.factory import open_store
from ledger.verify import verify
from tests.deploy.processes import chat_body, hold_states, running_gateway, seed_orgs, start_streams

STREAMS = 20
WORD_DELAY_MS = 200
GRACE_S = 4
PROMPT_WORDS = 40
"""The demo model echoes the prompt after its ~26-word reply: room for 66 streamed words."""
CLIENT_TIMEOUT_S = 20.0
SHORT_WORDS = 10
LONG_WORDS = 60


def _max_tokens(index: int) -> int:
    """Half the streams 2 s long (10 words at 200 ms each), half 12 s: seconds to spare on
    either side of the grace period. Lengths spread across it (10 to 67 words at 100 ms,
    2 s of grace) failed now and then on a loaded machine: a stream that ended at the
    deadline was settled in full and then cut, and once, in a full run, every one was cut."""
    return SHORT_WORDS if index % 2 else LONG_WORDS


async def _refused_within(base_url: str, timeout_s: float) -> bool:
    """True once a new connection is refused (not accepted and left hanging).

    Every probe opens a new connection (none is kept alive), so a failure is
    the listening side's answer. A connection the kernel had queued when the
    last copy of the listening socket closed is reset, or closed unanswered,
    rather than refused: a refusal all the same, and as prompt. A timeout is
    never one.
    """
    deadline = time.monotonic() + timeout_s
    fresh_connections = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=0.5, limits=fresh_connections) as client:
        while time.monotonic() < deadline:
            try:
                await client.get(f"{base_url}/healthz")
            except httpx.TimeoutException:
                pass
            except httpx.TransportError:
                return True
            await asyncio.sleep(0.05)
    return False


async def test_sigterm_drains_streams_within_the_grace_period_and_leaves_no_hold_open(
    tmp_path: Path,
) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    [org] = await seed_orgs(ledger_url, {"org_streaming": 100})

    with running_gateway(
        ledger_url,
        tmp_path,
        workers=2,
        demo_stream_delay_ms=WORD_DELAY_MS,
        shutdown_grace_s=GRACE_S,
    ) as gateway:
        async with gateway.client(timeout_s=CLIENT_TIMEOUT_S, max_connections=STREAMS) as client:
            bodies = [
                chat_body(max_tokens=_max_tokens(index), stream=True, prompt_words=PROMPT_WORDS)
                for index in range(STREAMS)
            ]
            async with asyncio.timeout(CLIENT_TIMEOUT_S):
                streams = await start_streams(client, org, bodies)
                signalled_at = time.monotonic()
                gateway.process.send_signal(signal.SIGTERM)
                assert await _refused_within(gateway.base_url, GRACE_S), (
                    "a draining gateway must refuse new connections, not leave them hanging"
                )
                ends = await asyncio.gather(*streams)
        exit_code = gateway.process.wait(CLIENT_TIMEOUT_S)
        drained_s = time.monotonic() - signalled_at
        assert exit_code == 0, gateway.log()

    assert drained_s < GRACE_S + 5
    complete = [end for end in ends if end.complete]
    cut = [end for end in ends if not end.complete]
    assert complete and cut, "the grace period should let short streams finish and cut long ones"
    assert all(end.error and "incomplete" in end.error for end in cut), cut

    assert hold_states(ledger_url) == {"settled": STREAMS}
    store = open_store(ledger_url)
    await store.open()
    try:
        assert await verify(store) == (1, [])
        records = {record.request_id: record for record in await store.usage_records(None)}
        assert set(records) == {end.request_id for end in ends}
        for end in complete:
            assert records[end.request_id].details.status == "ok"
        for end in cut:
            record = records[end.request_id]
            assert record.details.status != "ok"
            assert record.details.completion_tokens > 0 and record.charged_units > 0
    finally:
        await store.close()
