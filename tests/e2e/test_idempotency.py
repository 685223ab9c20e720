"""``Idempotency-Key`` on every metered route: a retry gets the first call's reply byte for byte
(a stream's events without the receipt, which was the first call's), without calling the
upstream and without a second charge; a key still in flight is 409, a key reused for another
request 422; a call that charged nothing leaves its key free."""

import asyncio
import json
from typing import Any

import httpx
import openai
import pytest

from ledger import LedgerStore, spus_to_units
from tests.e2e.support import (
    CHAT_MODEL,
    EMBEDDING_MODEL,
    WAIT_FOR_LEDGER_S,
    Org,
    RunningGateway,
    StartGateway,
    new_org,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Hello"}]
BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": CHAT_MODEL, "messages": MESSAGES},
    "/v1/completions": {"model": CHAT_MODEL, "prompt": "Hello"},
    "/v1/embeddings": {"model": EMBEDDING_MODEL, "input": ["Hello", "world"]},
    "/v1/responses": {"model": CHAT_MODEL, "input": "Hello"},
    "/v1/messages": {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 50},
}
STREAMED = ["/v1/chat/completions", "/v1/responses", "/v1/messages"]
FULL_BALANCE_UNITS = spus_to_units(100)
SLOW_UPSTREAM_S = 1.5


def headers(org: Org, key: str | None = "retry-me-1") -> dict[str, str]:
    sent = {"authorization": f"Bearer {org.token}", "x-api-key": org.token}
    if key is not None:
        sent["idempotency-key"] = key
    return sent


async def upstream_reached(upstream: FakeUpstream) -> None:
    """Until the first call is held and waiting for the upstream (bounded)."""
    deadline = asyncio.get_running_loop().time() + WAIT_FOR_LEDGER_S
    while True:
        if upstream.requests or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.01)


RECEIPT_FIELDS = ("spu_charged", "spu_remaining")


def events_without_receipt(stream: bytes) -> list[Any]:
    """A stream's events, parsed, with its receipt (the comment and usage fields) left out."""
    events: list[Any] = []
    for event in stream.decode().split("\n\n"):
        lines = [line for line in event.splitlines() if line and not line.startswith(":")]
        if lines:
            events.append([_without_receipt(line) for line in lines])
    return events


def _without_receipt(line: str) -> Any:
    field, _, value = line.partition(": ")
    if field != "data" or not value.startswith("{"):
        return line
    return _strip(json.loads(value))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in RECEIPT_FIELDS}
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def http(gateway: RunningGateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway.url, timeout=10.0)


async def charged_once(store: LedgerStore, org: Org) -> int:
    """The one usage record's charge, after checking the balance paid for it exactly once."""
    [record] = await wait_for_records(store, org.org_id, 1)
    assert await wait_for_no_holds(store, org.org_id) == 0
    balance = await store.balance(org.org_id)
    assert balance.available_units == FULL_BALANCE_UNITS - record.charged_units
    return record.charged_units


@pytest.mark.parametrize("path", list(BODIES))
async def test_a_retry_with_the_key_is_replayed_byte_for_byte_and_charged_once(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream, path: str
) -> None:
    async with http(gateway) as client:
        first = await client.post(path, json=BODIES[path], headers=headers(org))
        again = await client.post(path, json=BODIES[path], headers=headers(org))

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-request-id"] == first.headers["x-request-id"]
    assert again.headers["x-spu-charged"] == "0"
    assert "idempotent-replayed" not in first.headers
    assert len(upstream.requests) == 1
    assert await charged_once(store, org) > 0


@pytest.mark.parametrize("path", STREAMED)
async def test_a_streamed_call_is_replayed_as_the_events_it_sent_but_its_receipt(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream, path: str
) -> None:
    body = {**BODIES[path], "stream": True}
    async with http(gateway) as client:
        async with client.stream("POST", path, json=body, headers=headers(org)) as first:
            sent = await first.aread()
        again = await client.post(path, json=body, headers=headers(org))

    assert again.status_code == 200
    assert again.headers["content-type"].startswith("text/event-stream")
    assert b"spu_charged" in sent
    assert b"spu_charged" not in again.content
    assert events_without_receipt(again.content) == events_without_receipt(sent)
    assert sent.count(b"\n\n") > 3
    assert len(upstream.requests) == 1
    await charged_once(store, org)


async def test_the_same_key_and_request_in_json_of_another_layout_is_the_same_request(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    body = BODIES["/v1/chat/completions"]
    respaced = json.dumps(dict(reversed(list(body.items()))), indent=2)
    async with http(gateway) as client:
        first = await client.post("/v1/chat/completions", json=body, headers=headers(org))
        again = await client.post(
            "/v1/chat/completions",
            content=respaced,
            headers={**headers(org), "content-type": "application/json"},
        )
    assert again.content == first.content
    assert len(upstream.requests) == 1
    await charged_once(store, org)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_a_key_whose_call_is_still_running_gets_409_in_the_clients_shape(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream, path: str
) -> None:
    upstream.knobs.headers_delay_s = 0.5
    async with http(gateway) as client:
        first = asyncio.create_task(client.post(path, json=BODIES[path], headers=headers(org)))
        await upstream_reached(upstream)
        during = await client.post(path, json=BODIES[path], headers=headers(org))
        assert (await first).status_code == 200

    assert during.status_code == 409
    body = during.json()
    if path == "/v1/messages":
        assert body["type"] == "error"
        assert "Idempotency-Key" in body["error"]["message"]
    else:
        assert (body["error"]["code"], body["error"]["param"]) == (
            "idempotency_key_in_flight",
            "Idempotency-Key",
        )
    assert len(upstream.requests) == 1
    await charged_once(store, org)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_the_same_key_with_another_body_gets_422_in_the_clients_shape(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream, path: str
) -> None:
    other = {**BODIES[path], "messages": [{"role": "user", "content": "Something else"}]}
    async with http(gateway) as client:
        first = await client.post(path, json=BODIES[path], headers=headers(org))
        reused = await client.post(path, json=other, headers=headers(org))
        elsewhere = await client.post(
            "/v1/completions", json=BODIES["/v1/completions"], headers=headers(org)
        )

    assert first.status_code == 200
    assert reused.status_code == elsewhere.status_code == 422
    if path == "/v1/messages":
        assert reused.json()["type"] == "error"
        assert "Idempotency-Key" in reused.json()["error"]["message"]
    else:
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert elsewhere.json()["error"]["param"] == "Idempotency-Key"
    assert len(upstream.requests) == 1
    await charged_once(store, org)


async def test_keys_belong_to_one_org(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    other = await new_org(store)
    body = BODIES["/v1/chat/completions"]
    async with http(gateway) as client:
        mine = await client.post("/v1/chat/completions", json=body, headers=headers(org))
        theirs = await client.post("/v1/chat/completions", json=body, headers=headers(other))

    assert mine.status_code == theirs.status_code == 200
    assert "idempotent-replayed" not in theirs.headers
    assert len(upstream.requests) == 2


async def test_a_call_that_charged_nothing_leaves_its_key_free_for_the_retry(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    body = BODIES["/v1/chat/completions"]
    upstream.knobs.fail_status = 503
    async with http(gateway) as client:
        failed = await client.post("/v1/chat/completions", json=body, headers=headers(org))
        upstream.knobs.fail_status = None
        retried = await client.post("/v1/chat/completions", json=body, headers=headers(org))

    assert failed.status_code == 503
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
    assert len(upstream.requests) == 2
    await charged_once(store, org)


async def test_a_reply_too_large_to_keep_is_charged_once_and_its_retry_told_so(
    start_gateway: StartGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(idempotency_max_reply_bytes=64)
    body = BODIES["/v1/chat/completions"]
    async with http(gateway) as client:
        first = await client.post("/v1/chat/completions", json=body, headers=headers(org))
        again = await client.post("/v1/chat/completions", json=body, headers=headers(org))

    assert first.status_code == 200 and len(first.content) > 64
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "idempotency_reply_not_kept"
    assert again.headers["x-should-retry"] == "false"
    assert len(upstream.requests) == 1
    await charged_once(store, org)


@pytest.mark.parametrize("key", ["", "k" * 256, "naïve", "tab\there"])
async def test_an_unusable_key_is_a_400_naming_the_header(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream, key: str
) -> None:
    async with http(gateway) as client:
        refused = await client.post(
            "/v1/chat/completions",
            json=BODIES["/v1/chat/completions"],
            # Sent as bytes: a client's non-ASCII header arrives as Latin-1 text.
            headers={"authorization": f"Bearer {org.token}", "idempotency-key": key.encode()},
        )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "Idempotency-Key"
    assert list(upstream.requests) == []


async def test_an_sdk_that_retries_on_its_own_timeout_is_charged_once_with_a_key(
    start_gateway: StartGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    """The openai SDK gives up on each attempt after 0.5 s and retries with its own backoff
    (409 while the first attempt runs); the upstream takes 1.5 s. The provider works once."""
    gateway = start_gateway(upstream_timeout_s=SLOW_UPSTREAM_S + 5)
    upstream.knobs.headers_delay_s = SLOW_UPSTREAM_S
    attempts: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        attempts.append(request)

    client = openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1",
        api_key=org.token,
        timeout=0.5,
        max_retries=4,
        http_client=httpx.AsyncClient(event_hooks={"request": [count]}),
    )
    async with client:
        completion = await client.chat.completions.create(
            model=CHAT_MODEL,
            messages=MESSAGES,
            extra_headers={"Idempotency-Key": "sdk-retry-1"},
        )

    assert completion.choices[0].message.content
    assert len(attempts) >= 2
    assert len(upstream.requests) == 1
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.status == "ok"
    await charged_once(store, org)


async def test_without_a_key_each_abandoned_attempt_is_charged_as_the_provider_charged_it(
    start_gateway: StartGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(upstream_timeout_s=SLOW_UPSTREAM_S + 5)
    upstream.knobs.headers_delay_s = SLOW_UPSTREAM_S
    client = openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=org.token, timeout=0.5, max_retries=1
    )
    async with client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)

    records = await wait_for_records(store, org.org_id, 2)
    assert len(upstream.requests) == len(records) == 2
    assert await wait_for_no_holds(store, org.org_id) == 0
