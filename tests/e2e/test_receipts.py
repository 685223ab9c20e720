"""A receipt on every call: headers on a complete reply; on a stream, the last bytes before
its end (a comment line, and the usage object when there is one), for chat, messages and
responses, read by the openai and anthropic SDKs without error, agreeing with /v1/usage and
/v1/balance."""

from typing import Any

import httpx
import pytest

from ledger import LedgerStore, format_spus
from tests.e2e.anthropic_support import (
    HAIKU,
    SONNET,
    UPSTREAM_KEY,
    UPSTREAM_KEY_ENV,
    anthropic_client,
    anthropic_routes,
)
from tests.e2e.responses_support import NATIVE
from tests.e2e.support import CHAT_MODEL, Org, RunningGateway, StartGateway, new_org
from tests.fakes.upstream import FakeUpstream

HELLO: list[Any] = [{"role": "user", "content": "Say hello."}]


async def _books(gateway: RunningGateway, org: Org) -> tuple[str, str]:
    """The org's one usage record's charge, and its available balance, as the API shows them."""
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"authorization": f"Bearer {org.token}"}
    ) as http:
        [record] = (await http.get("/v1/usage")).json()["data"]
        balance = (await http.get("/v1/balance")).json()
    return record["spus"], balance["available_spus"]


def _comment_before(text: str, end: str) -> dict[str, str]:
    """The receipt comment, which must be the line before the first line starting ``end``."""
    lines = [line for line in text.splitlines() if line]
    at = next(n for n, line in enumerate(lines) if line.startswith(end))
    comment = lines[at - 1]
    assert comment.startswith(": "), lines[at - 2 : at + 1]
    return dict(field.split("=") for field in comment[2:].split())


async def test_a_chat_stream_ends_with_the_receipt_in_its_usage_and_a_comment(
    gateway: RunningGateway, org: Org
) -> None:
    async with gateway.client(org.token) as client:
        stream = await client.chat.completions.create(
            model=CHAT_MODEL,
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []

    charged, remaining = await _books(gateway, org)
    assert (usage.spu_charged, usage.spu_remaining) == (charged, remaining)
    assert float(charged) > 0


async def test_a_stream_without_usage_still_ends_with_the_receipt_comment(
    gateway: RunningGateway, org: Org
) -> None:
    body = {"model": CHAT_MODEL, "stream": True, "max_tokens": 20, "messages": HELLO}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10.0) as http:
        auth = {"authorization": f"Bearer {org.token}"}
        text = (await http.post("/v1/chat/completions", json=body, headers=auth)).text

    receipt = _comment_before(text, "data: [DONE]")
    assert '"usage":{' not in text.replace(" ", "")
    assert (receipt["spu_charged"], receipt["spu_remaining"]) == await _books(gateway, org)


async def test_a_plain_reply_carries_the_receipt_in_its_headers(
    gateway: RunningGateway, org: Org
) -> None:
    async with gateway.client(org.token) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model=CHAT_MODEL, messages=HELLO
        )
    assert (raw.headers["x-spu-charged"], raw.headers["x-spu-remaining"]) == await _books(
        gateway, org
    )


async def test_a_translated_messages_stream_ends_with_the_receipt(
    gateway: RunningGateway, org: Org
) -> None:
    client = anthropic_client(gateway, api_key=org.token)
    deltas = []
    async with client.messages.stream(model=CHAT_MODEL, max_tokens=50, messages=HELLO) as events:
        async for event in events:
            if event.type == "message_delta":
                deltas.append(event)
        final = await events.get_final_message()
    assert final.stop_reason == "end_turn" and len(deltas) == 1

    charged, remaining = await _books(gateway, org)
    usage = deltas[0].usage
    assert (usage.spu_charged, usage.spu_remaining) == (charged, remaining)


async def test_a_native_messages_stream_ends_with_the_receipt_in_message_delta(
    start_gateway: StartGateway,
    upstream_server: tuple[FakeUpstream, str],
    monkeypatch: pytest.MonkeyPatch,
    org: Org,
    store: LedgerStore,
) -> None:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)
    claude = start_gateway(model_list=anthropic_routes(upstream_server[1]))
    body = {"model": HAIKU, "max_tokens": 100, "messages": HELLO, "stream": True}
    async with httpx.AsyncClient(base_url=claude.url, timeout=10.0) as http:
        text = (await http.post("/v1/messages", json=body, headers={"x-api-key": org.token})).text
    receipt = _comment_before(text, "event: message_stop")

    client = anthropic_client(claude, api_key=org.token)
    async with client.messages.stream(model=HAIKU, max_tokens=100, messages=HELLO) as events:
        deltas = [event async for event in events if event.type == "message_delta"]
    [record, first] = await store.usage_records(org.org_id)
    assert receipt["spu_charged"] == format_spus(first.charged_units)
    assert deltas[0].usage.spu_charged == format_spus(record.charged_units)
    balance = await store.balance(org.org_id)
    assert deltas[0].usage.spu_remaining == format_spus(balance.available_units)


@pytest.mark.parametrize("model", [NATIVE, "spu-demo", SONNET], ids=["native", "chat", "messages"])
async def test_a_responses_stream_ends_with_the_receipt_in_response_completed(
    agents_gateway: RunningGateway, store: LedgerStore, model: str
) -> None:
    org = await new_org(store)
    async with agents_gateway.client(org.token) as client:
        async with client.responses.stream(model=model, input="Hello") as events:
            kinds = [event.type async for event in events]
            response = await events.get_final_response()
        async with httpx.AsyncClient(base_url=agents_gateway.url, timeout=10.0) as http:
            body = {"model": model, "input": "Hello", "stream": True}
            auth = {"authorization": f"Bearer {org.token}"}
            text = (await http.post("/v1/responses", json=body, headers=auth)).text

    assert kinds[-1] == "response.completed" and response.usage is not None
    first, second = await store.usage_records(org.org_id)
    assert response.usage.spu_charged == format_spus(second.charged_units)
    receipt = _comment_before(text, "event: response.completed")
    assert receipt["spu_charged"] == format_spus(first.charged_units)
    assert receipt["spu_remaining"] == format_spus(
        (await store.balance(org.org_id)).available_units
    )
