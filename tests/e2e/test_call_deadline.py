"""A call's total deadline (``SPU_CALL_DEADLINE_S``): a stream still running then is cut and
charged for what it streamed; a call that has answered nothing by then gets 504 and costs
nothing. The upstream's own timeout is per read, so without it a live stream has no end."""

import httpx
import openai
import orjson
import pytest

from ledger import LedgerStore
from pricing import count_text_tokens
from tests.e2e.support import (
    CHAT_MODEL,
    Org,
    StartGateway,
    expected_units,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.upstream import FakeUpstream, reply_pieces

DEADLINE_S = 1.0
PIECE_DELAY_S = 0.2
LONG_REPLY = " ".join(f"word{n}" for n in range(40))
"""Forty pieces at 0.2 s each: 8 s, far past the deadline."""
PIECES = reply_pieces(LONG_REPLY)
MESSAGES = [{"role": "user", "content": "Take your time."}]


def possible_completion_tokens(received: str) -> set[int]:
    """What the gateway counted: what the client got, or one piece more it read meanwhile."""
    sent = len(reply_pieces(received))
    return {count_text_tokens("".join(PIECES[:n]), CHAT_MODEL) for n in (sent, sent + 1)}


async def test_a_stream_past_the_deadline_is_cut_and_charged_for_what_it_streamed(
    start_gateway: StartGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(call_deadline_s=DEADLINE_S)
    upstream.knobs.reply = LONG_REPLY
    upstream.knobs.chunk_delay_s = PIECE_DELAY_S
    received = ""
    async with gateway.client(org.token) as client:
        stream = await client.chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, stream=True
        )
        with pytest.raises(openai.APIError, match="SPU_CALL_DEADLINE_S") as cut:
            async for chunk in stream:
                received += chunk.choices[0].delta.content or ""
    assert cut.value.code == "call_deadline_exceeded"
    assert 0 < len(reply_pieces(received)) < len(PIECES)

    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.status == "deadline_exceeded"
    assert record.details.completion_tokens in possible_completion_tokens(received)
    assert record.charged_units == expected_units(
        record.details.prompt_tokens, record.details.completion_tokens
    )
    assert await wait_for_no_holds(store, org.org_id) == 0


async def test_a_cut_messages_stream_ends_with_anthropics_error_event_and_keeps_its_connection(
    start_gateway: StartGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(call_deadline_s=DEADLINE_S)
    upstream.knobs.reply = LONG_REPLY
    upstream.knobs.chunk_delay_s = PIECE_DELAY_S
    body = {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 100, "stream": True}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"x-api-key": org.token}, limits=limits, timeout=10.0
    ) as http:
        async with http.stream("POST", "/v1/messages", json=body) as response:
            events = (await response.aread()).split(b"\n\n")
            cut_on = response.extensions["network_stream"].get_extra_info("client_addr")
        following = await http.get("/v1/models")
        served_on = following.extensions["network_stream"].get_extra_info("client_addr")

    assert response.status_code == 200
    closing = [event for event in events if event.strip()][-1]
    name, data = closing.split(b"\n", 1)
    assert name == b"event: error"
    error = orjson.loads(data.removeprefix(b"data: "))
    assert error["type"] == "error" and "SPU_CALL_DEADLINE_S" in error["error"]["message"]
    assert following.status_code == 200 and served_on == cut_on

    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.status == "deadline_exceeded"
    assert record.details.completion_tokens > 0
    assert await wait_for_no_holds(store, org.org_id) == 0


async def test_a_call_unanswered_at_the_deadline_gets_504_and_costs_nothing(
    start_gateway: StartGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(call_deadline_s=DEADLINE_S, upstream_timeout_s=10.0)
    upstream.knobs.headers_delay_s = DEADLINE_S + 1.0
    async with gateway.client(org.token) as client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert refused.value.status_code == 504
    assert refused.value.code == "call_deadline_exceeded"
    assert await wait_for_no_holds(store, org.org_id) == 0
    assert await store.usage_records(org.org_id) == []
