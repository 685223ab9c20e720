"""/v1/messages through the official ``anthropic`` SDK, against a faked Anthropic upstream."""

from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest

from ledger import LedgerStore, format_spus
from pricing.tokens import get_encoding
from tests.e2e.anthropic_support import (
    HAIKU,
    SONNET,
    UPSTREAM_KEY,
    UPSTREAM_KEY_ENV,
    anthropic_client,
    anthropic_routes,
    ask,
    assert_charged,
    wait_for_cut_stream,
)
from tests.e2e.support import (
    Org,
    RunningGateway,
    StartGateway,
    new_org,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.upstream import FakeUpstream, reply_pieces

HELLO = [{"role": "user", "content": "Hello, Claude"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def claude(
    start_gateway: StartGateway,
    upstream_server: tuple[FakeUpstream, str],
    monkeypatch: pytest.MonkeyPatch,
) -> RunningGateway:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    return start_gateway(model_list=anthropic_routes(upstream_server[1]))


async def _only_record(store: LedgerStore, org: Org) -> Any:
    records = await wait_for_records(store, org.org_id, 1)
    assert len(records) == 1
    assert await wait_for_no_holds(store, org.org_id) == 0
    return records[0]


async def test_plain_message_is_relayed_and_charged_at_litellms_rates(
    claude: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.prompt_tokens = 25
    async with anthropic_client(claude, api_key=org.token) as client:
        raw = await client.messages.with_raw_response.create(
            model=SONNET, max_tokens=200, messages=HELLO
        )
    message = await raw.parse()
    pieces = reply_pieces(upstream.knobs.reply)
    assert message.content[0].type == "text"
    assert message.content[0].text == "".join(pieces)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (25, len(pieces))
    record = await _only_record(store, org)
    assert record.details.model == SONNET
    assert (record.details.source, record.details.operation) == ("anthropic", "messages")
    assert (record.details.prompt_tokens, record.details.completion_tokens) == (25, len(pieces))
    assert_charged(record, SONNET, input_tokens=25, output_tokens=len(pieces))
    assert raw.headers["x-spu-charged"] == format_spus(record.charged_units)
    assert raw.headers["x-request-id"] == record.request_id


async def test_upstream_gets_its_own_key_and_the_clients_anthropic_headers(
    claude: RunningGateway, org: Org, upstream: FakeUpstream
) -> None:
    async with anthropic_client(claude, api_key=org.token) as client:
        await client.messages.create(
            model=HAIKU,
            max_tokens=50,
            messages=HELLO,
            extra_headers={
                "anthropic-version": "2023-06-01",
                "anthropic-beta": "prompt-caching-2024-07-31",
            },
        )
    seen = upstream.requests[-1]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == UPSTREAM_KEY
    assert "authorization" not in seen.headers
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert seen.body["model"] == HAIKU
    assert seen.body["messages"] == HELLO


async def test_streamed_message_is_relayed_event_by_event_and_charged_once(
    claude: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.prompt_tokens = 40
    async with anthropic_client(claude, api_key=org.token) as client:
        async with client.messages.stream(model=SONNET, max_tokens=200, messages=HELLO) as stream:
            kinds = [event.type async for event in stream]
            message = await stream.get_final_message()
    pieces = reply_pieces(upstream.knobs.reply)
    assert kinds.count("content_block_delta") == len(pieces)
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert message.content[0].text == "".join(pieces)
    record = await _only_record(store, org)
    assert record.details.status == "ok"
    assert (record.details.prompt_tokens, record.details.completion_tokens) == (40, len(pieces))
    assert_charged(record, SONNET, input_tokens=40, output_tokens=len(pieces))


async def test_stream_bytes_reach_the_client_unchanged_with_the_held_amount(
    claude: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    body = {"model": HAIKU, "max_tokens": 100, "messages": HELLO, "stream": True}
    async with httpx.AsyncClient(base_url=claude.url, timeout=10.0) as http:
        async with http.stream(
            "POST", "/v1/messages", json=body, headers={"x-api-key": org.token}
        ) as response:
            text = (await response.aread()).decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert float(response.headers["x-spu-held"]) > 0
    names = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    pieces = reply_pieces(upstream.knobs.reply)
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * len(pieces),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    await _only_record(store, org)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_tool_use_reaches_the_client_as_a_parsed_tool_call(
    stream: bool, claude: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.reply = "Let me check."
    upstream.knobs.tool_use = ("get_weather", {"city": "Paris"})
    request: dict[str, Any] = {
        "model": SONNET,
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "auto"},
    }
    async with anthropic_client(claude, api_key=org.token) as client:
        message = await ask(client, stream, **request)
    assert message.stop_reason == "tool_use"
    tool_call = message.content[-1]
    assert tool_call.type == "tool_use"
    assert (tool_call.name, tool_call.input) == ("get_weather", {"city": "Paris"})
    assert upstream.requests[-1].body["tools"] == [WEATHER_TOOL]
    record = await _only_record(store, org)
    assert record.details.status == "ok"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_prompt_cache_writes_and_reads_are_priced_at_their_own_rates(
    stream: bool, claude: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.prompt_tokens = 12
    upstream.knobs.cache_creation_input_tokens = 3000
    upstream.knobs.cache_read_input_tokens = 20000
    system = [
        {"type": "text", "text": "You are a careful assistant. " * 50},
        {"type": "text", "text": "Project notes.", "cache_control": {"type": "ephemeral"}},
    ]
    request: dict[str, Any] = {
        "model": SONNET,
        "max_tokens": 100,
        "system": system,
        "messages": HELLO,
    }
    async with anthropic_client(claude, api_key=org.token) as client:
        message = await ask(client, stream, **request)
    assert message.usage.cache_creation_input_tokens == 3000
    assert message.usage.cache_read_input_tokens == 20000
    assert upstream.requests[-1].body["system"] == system
    record = await _only_record(store, org)
    output_tokens = len(reply_pieces(upstream.knobs.reply))
    assert record.details.prompt_tokens == 12 + 3000 + 20000
    assert_charged(
        record,
        SONNET,
        input_tokens=12,
        output_tokens=output_tokens,
        cache_creation_input_tokens=3000,
        cache_read_input_tokens=20000,
    )
    # The cache rates really differ from the plain rate, so pricing all input alike would fail.
    cost_if_uncached = Decimal(23012) * Decimal("3e-6") + output_tokens * Decimal("1.5e-5")
    assert record.details.cost_pico_usd != int(cost_if_uncached * 10**12)


async def test_count_tokens_is_answered_by_the_upstream_and_charges_nothing(
    claude: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.prompt_tokens = 321
    async with anthropic_client(claude, api_key=org.token) as client:
        counted = await client.messages.count_tokens(
            model=SONNET, messages=HELLO, tools=[WEATHER_TOOL]
        )
    assert counted.input_tokens == 321
    seen = upstream.requests[-1]
    assert seen.path == "/v1/messages/count_tokens"
    assert seen.headers["x-api-key"] == UPSTREAM_KEY
    assert await store.usage_records(org.org_id) == []
    assert (await store.balance(org.org_id)).held_units == 0


async def test_bearer_org_token_is_accepted_like_x_api_key(
    claude: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with anthropic_client(claude, auth_token=org.token) as client:
        message = await client.messages.create(model=HAIKU, max_tokens=50, messages=HELLO)
    assert message.content[0].type == "text"
    await _only_record(store, org)


@pytest.mark.parametrize("header", ["api_key", "auth_token"])
async def test_unknown_token_is_refused_with_anthropics_401(
    header: str, claude: RunningGateway, upstream: FakeUpstream
) -> None:
    async with anthropic_client(claude, **{header: "spu_not-a-real-token"}) as client:
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await client.messages.create(model=HAIKU, max_tokens=50, messages=HELLO)
    assert refused.value.status_code == 401
    assert refused.value.type == "authentication_error"
    assert refused.value.body["type"] == "error"  # type: ignore[index]
    assert list(upstream.requests) == []


async def test_unaffordable_call_is_refused_with_402_and_never_forwarded(
    claude: RunningGateway, store: LedgerStore, upstream: FakeUpstream
) -> None:
    poor = await new_org(store, spus=Decimal("0.01"))
    async with anthropic_client(claude, api_key=poor.token) as client:
        with pytest.raises(anthropic.PaymentRequiredError) as refused:
            await client.messages.create(model=SONNET, max_tokens=4000, messages=HELLO)
    assert refused.value.type == "billing_error"
    assert "Insufficient SPU credits" in (refused.value.api_message or "")
    error = refused.value.body["error"]  # type: ignore[index]
    assert error["available_spus"] == "0.01"
    assert error["max_affordable_tokens"] < 4000
    assert list(upstream.requests) == []
    assert await store.usage_records(poor.org_id) == []


async def test_missing_max_tokens_is_a_400_and_nothing_is_held(
    claude: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with anthropic_client(claude, api_key=org.token) as client:
        with pytest.raises(anthropic.BadRequestError) as refused:
            await client.post(
                "/v1/messages", body={"model": SONNET, "messages": HELLO}, cast_to=object
            )
    assert refused.value.type == "invalid_request_error"
    assert "max_tokens" in (refused.value.api_message or "")
    assert list(upstream.requests) == []
    assert (await store.balance(org.org_id)).held_units == 0


async def test_malformed_json_is_a_400_in_anthropics_shape(
    claude: RunningGateway, org: Org
) -> None:
    async with httpx.AsyncClient(base_url=claude.url) as http:
        response = await http.post(
            "/v1/messages",
            content=b'{"model": "claude", "max_tokens": ',
            headers={"x-api-key": org.token, "content-type": "application/json"},
        )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"


async def test_unknown_model_is_a_404(claude: RunningGateway, org: Org) -> None:
    async with anthropic_client(claude, api_key=org.token) as client:
        with pytest.raises(anthropic.NotFoundError) as refused:
            await client.messages.create(model="claude-imaginary", max_tokens=50, messages=HELLO)
    assert refused.value.type == "not_found_error"


async def test_oversized_body_is_a_413(
    start_gateway: StartGateway,
    upstream_server: tuple[FakeUpstream, str],
    org: Org,
    upstream: FakeUpstream,
) -> None:
    small = start_gateway(model_list=anthropic_routes(upstream_server[1]), max_body_bytes=4096)
    huge = [{"role": "user", "content": "x" * 10_000}]
    async with anthropic_client(small, api_key=org.token) as client:
        with pytest.raises(anthropic.ContentTooLargeError) as refused:
            await client.messages.create(model=SONNET, max_tokens=50, messages=huge)
    assert refused.value.status_code == 413
    assert list(upstream.requests) == []


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (429, anthropic.RateLimitError),
        (529, anthropic.OverloadedError),
        (500, anthropic.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_upstream_error_is_relayed_with_its_status_and_nothing_is_charged(
    status: int,
    error_class: type[anthropic.APIStatusError],
    stream: bool,
    claude: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
) -> None:
    upstream.knobs.fail_status = status
    upstream.knobs.fail_message = "upstream says no"
    async with anthropic_client(claude, api_key=org.token) as client:
        with pytest.raises(error_class) as failed:
            await ask(client, stream, model=SONNET, max_tokens=50, messages=HELLO)
    assert failed.value.status_code == status
    assert failed.value.api_message == "upstream says no"
    assert await wait_for_no_holds(store, org.org_id) == 0
    assert await store.usage_records(org.org_id) == []


async def test_client_disconnecting_mid_stream_pays_for_what_was_streamed(
    claude: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.reply = " ".join(f"word{index}" for index in range(80))
    upstream.knobs.chunk_delay_s = 0.03
    upstream.knobs.prompt_tokens = 30
    read: list[str] = []
    async with anthropic_client(claude, api_key=org.token) as client:
        async with client.messages.stream(model=SONNET, max_tokens=500, messages=HELLO) as stream:
            async for text in stream.text_stream:
                read.append(text)
                if len(read) == 5:
                    break
    record = await _only_record(store, org)
    pieces = reply_pieces(upstream.knobs.reply)
    encoding = get_encoding("cl100k_base")
    # What the gateway relayed: the pieces read, perhaps a few more that were in flight.
    relayed_counts = {
        len(encoding.encode("".join(pieces[:sent]))) for sent in range(5, len(pieces))
    }
    assert record.details.status == "client_disconnected"
    assert record.details.prompt_tokens == 30
    assert record.details.completion_tokens in relayed_counts
    assert_charged(record, SONNET, input_tokens=30, output_tokens=record.details.completion_tokens)
    assert await wait_for_cut_stream(upstream) == 1
