"""Streams cut short: the org pays for what was generated, counted by the gateway."""

import asyncio

from ledger import LedgerStore
from pricing import count_text_tokens
from tests.e2e.support import (
    CHAT_MODEL,
    WAIT_FOR_LEDGER_S,
    Org,
    RunningGateway,
    expected_units,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.upstream import DEFAULT_REPLY, FakeUpstream, reply_pieces

MESSAGES = [{"role": "user", "content": "Tell me a long story."}]
PIECES = reply_pieces(DEFAULT_REPLY)
PIECES_READ_BEFORE_HANGING_UP = 4


async def wait_for_cut_stream(upstream: FakeUpstream) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_FOR_LEDGER_S
    while True:
        if upstream.streams_cut or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.02)


async def test_client_disconnect_mid_stream_charges_what_was_streamed_counted_with_tiktoken(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.chunk_delay_s = 0.05
    received = ""
    async with gateway.client(org.token) as client:
        stream = await client.chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, stream=True
        )
        async for chunk in stream:
            received += chunk.choices[0].delta.content or ""
            if received.count(" ") == PIECES_READ_BEFORE_HANGING_UP:
                break
        await stream.close()

    [record] = await wait_for_records(store, org.org_id, 1)
    details = record.details
    assert details.status == "client_disconnected"
    # The gateway may have read one piece more than the client took before it noticed.
    possible = {
        count_text_tokens("".join(PIECES[:n]), CHAT_MODEL)
        for n in (PIECES_READ_BEFORE_HANGING_UP, PIECES_READ_BEFORE_HANGING_UP + 1)
    }
    assert received == "".join(PIECES[:PIECES_READ_BEFORE_HANGING_UP])
    assert details.completion_tokens in possible
    assert details.prompt_tokens > 0
    assert record.charged_units == expected_units(details.prompt_tokens, details.completion_tokens)
    assert await wait_for_no_holds(store, org.org_id) == 0
    await wait_for_cut_stream(upstream)
    assert (upstream.streams_cut, upstream.streams_finished) == (1, 0)


async def test_client_disconnect_before_any_content_releases_the_hold(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.chunk_delay_s = 0.5
    async with gateway.client(org.token) as client:
        stream = await client.chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, stream=True
        )
        await stream.close()
    assert await wait_for_no_holds(store, org.org_id) == 0
    await wait_for_cut_stream(upstream)
    assert upstream.streams_cut == 1
    records = await store.usage_records(org.org_id)
    # The role chunk may have been read before the hang-up; it carries no output.
    assert all(record.details.completion_tokens == 0 for record in records)


async def test_upstream_stalling_mid_stream_charges_what_was_streamed(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.stall_after_pieces = 3
    upstream.knobs.stall_s = gateway.settings.upstream_timeout_s + 0.5
    received = ""
    async with gateway.client(org.token) as client:
        stream = await client.chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, stream=True
        )
        async for chunk in stream:
            received += chunk.choices[0].delta.content or ""

    assert received == "".join(PIECES[:3])
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.status == "upstream_interrupted"
    assert record.details.completion_tokens == count_text_tokens(received, CHAT_MODEL)
    assert await wait_for_no_holds(store, org.org_id) == 0
