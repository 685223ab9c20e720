"""SIGTERM during 20 streams: new connections refused, streams drain or end cleanly, no hold open.

Streams shorter than the grace period (``SPU_SHUTDOWN_GRACE_S``) finish whole;
longer ones are cut at the deadline and still pay for what they streamed. The
gateway then exits with no hold left open and the ledger conserved.
"""

import asyncio
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from ledger.sqlite import SqliteLedger
from ledger.verify import verify
from tests.deploy.processes import Org, chat_body, hold_states, running_gateway, seed_orgs

STREAMS = 20
WORD_DELAY_MS = 100
GRACE_S = 2
PROMPT_WORDS = 40
"""The demo model echoes the prompt after its ~26-word reply: room for 66 streamed words."""
CLIENT_TIMEOUT_S = 20.0


def _max_tokens(index: int) -> int:
    """10 to 67 words at 100 ms each: from well inside the grace period to well past it."""
    return 10 + 3 * index


@dataclass(frozen=True)
class StreamEnd:
    request_id: str
    complete: bool
    error: str | None


async def _stream(
    client: httpx.AsyncClient, org: Org, index: int, started: asyncio.Event
) -> StreamEnd:
    body = chat_body(max_tokens=_max_tokens(index), stream=True, prompt_words=PROMPT_WORDS)
    headers = {"authorization": f"Bearer {org.token}"}
    received = b""
    async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as reply:
        assert reply.status_code == 200
        request_id = reply.headers["x-request-id"]
        started.set()
        try:
            async for piece in reply.aiter_bytes():
                received += piece
        except httpx.RemoteProtocolError as error:
            return StreamEnd(request_id, complete=False, error=str(error))
    return StreamEnd(request_id, complete=received.endswith(b"data: [DONE]\n\n"), error=None)


async def _refused_within(base_url: str, timeout_s: float) -> bool:
    """True once a new connection is refused (not accepted and left hanging)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=0.5) as client:
        while time.monotonic() < deadline:
            try:
                await client.get(f"{base_url}/healthz")
            except httpx.ConnectError:
                return True
            await asyncio.sleep(0.05)
    return False


async def test_sigterm_drains_streams_within_the_grace_period_and_leaves_no_hold_open(
    tmp_path: Path,
) -> None:
    ledger_path = tmp_path / "ledger.db"
    [org] = await seed_orgs(ledger_path, {"org_streaming": 100})

    with running_gateway(
        ledger_path,
        tmp_path,
        workers=2,
        demo_stream_delay_ms=WORD_DELAY_MS,
        shutdown_grace_s=GRACE_S,
    ) as gateway:
        limits = httpx.Limits(max_connections=STREAMS)
        async with httpx.AsyncClient(
            base_url=gateway.base_url, limits=limits, timeout=CLIENT_TIMEOUT_S
        ) as client:
            started = [asyncio.Event() for _ in range(STREAMS)]
            streams = [
                asyncio.create_task(_stream(client, org, index, started[index]))
                for index in range(STREAMS)
            ]
            async with asyncio.timeout(CLIENT_TIMEOUT_S):
                await asyncio.gather(*(event.wait() for event in started))
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

    assert hold_states(ledger_path) == {"settled": STREAMS}
    store = SqliteLedger(ledger_path)
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
