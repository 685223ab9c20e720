"""/v1/messages for models whose upstream speaks OpenAI: translated both ways, metered the same."""

from typing import Any

import anthropic
import pytest

from ledger import LedgerStore
from pricing import count_anthropic_prompt_tokens
from pricing.tokens import get_encoding
from proxy.model_registry import DEMO_MODEL
from proxy.settings import ModelRoute
from tests.e2e.anthropic_support import anthropic_client, ask
from tests.e2e.support import (
    CHAT_MODEL,
    INPUT_USD_PER_TOKEN,
    OUTPUT_USD_PER_TOKEN,
    Org,
    RunningGateway,
    StartGateway,
    expected_units,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.upstream import FakeUpstream, reply_pieces

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def translated(
    start_gateway: StartGateway, upstream_server: tuple[FakeUpstream, str]
) -> RunningGateway:
    """The demo model, and the fake's OpenAI chat endpoint as an OpenAI-format model."""
    route = ModelRoute(
        model_name=CHAT_MODEL,
        provider_model=CHAT_MODEL,
        api_base=f"{upstream_server[1]}/v1",
        input_cost_per_token=INPUT_USD_PER_TOKEN,
        output_cost_per_token=OUTPUT_USD_PER_TOKEN,
    )
    return start_gateway(model_list=[route], demo_model=True)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_demo_model_answers_the_anthropic_sdk_and_is_metered(
    stream: bool, translated: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with anthropic_client(translated, api_key=org.token) as client:
        message = await ask(
            client,
            stream,
            model=DEMO_MODEL.model_name,
            max_tokens=200,
            system="Be brief.",
            messages=[{"role": "user", "content": "Hello there"}],
        )
    assert message.model == DEMO_MODEL.model_name
    assert message.stop_reason == "end_turn"
    assert message.content[0].text.startswith("Hello from the SPU Gateway demo model.")
    assert message.content[0].text.rstrip().endswith("You said: Hello there")
    records = await wait_for_records(store, org.org_id, 1)
    assert len(records) == 1 and await wait_for_no_holds(store, org.org_id) == 0
    details = records[0].details
    assert (details.model, details.provider, details.source) == ("spu-demo", "demo", "anthropic")
    assert details.status == "ok"
    assert (details.prompt_tokens, details.completion_tokens) == (
        message.usage.input_tokens,
        message.usage.output_tokens,
    )
    assert (
        details.cost_pico_usd
        == (
            details.prompt_tokens * DEMO_MODEL.input_cost_per_token  # type: ignore[operator]
            + details.completion_tokens * DEMO_MODEL.output_cost_per_token  # type: ignore[operator]
        )
        * 10**12
    )


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_openai_upstream_gets_a_chat_request_and_the_client_an_anthropic_message(
    stream: bool,
    translated: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
) -> None:
    upstream.knobs.prompt_tokens = 60
    conversation = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny, 21 °C"},
                {"type": "text", "text": "Summarize it."},
            ],
        },
    ]
    async with anthropic_client(translated, api_key=org.token) as client:
        message = await ask(
            client,
            stream,
            model=CHAT_MODEL,
            max_tokens=300,
            system=[{"type": "text", "text": "You are terse."}],
            messages=conversation,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "any"},
            stop_sequences=["END"],
        )
    seen = upstream.requests[-1]
    assert seen.path == "/v1/chat/completions"
    assert seen.body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny, 21 °C"},
        {"role": "user", "content": [{"type": "text", "text": "Summarize it."}]},
    ]
    assert seen.body["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]
    assert seen.body["tool_choice"] == "required"
    assert (seen.body["max_completion_tokens"], seen.body["stop"]) == (300, ["END"])
    assert seen.body.get("stream_options") == ({"include_usage": True} if stream else None)
    pieces = reply_pieces(upstream.knobs.reply)
    assert message.content[0].text == "".join(pieces)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (60, len(pieces))
    records = await wait_for_records(store, org.org_id, 1)
    assert len(records) == 1
    assert records[0].charged_units == expected_units(60, len(pieces))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_openai_upstream_error_reaches_the_client_in_anthropics_shape(
    stream: bool,
    translated: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
) -> None:
    upstream.knobs.fail_status = 429
    upstream.knobs.fail_message = "slow down"
    async with anthropic_client(translated, api_key=org.token) as client:
        with pytest.raises(anthropic.RateLimitError) as failed:
            await ask(
                client,
                stream,
                model=CHAT_MODEL,
                max_tokens=50,
                messages=[{"role": "user", "content": "hi"}],
            )
    assert failed.value.type == "rate_limit_error"
    assert failed.value.api_message == "slow down"
    assert await wait_for_no_holds(store, org.org_id) == 0
    assert await store.usage_records(org.org_id) == []


async def test_translated_stream_cut_by_the_client_pays_for_what_was_streamed(
    translated: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.reply = " ".join(f"word{index}" for index in range(80))
    upstream.knobs.chunk_delay_s = 0.03
    read = 0
    async with anthropic_client(translated, api_key=org.token) as client:
        async with client.messages.stream(
            model=CHAT_MODEL, max_tokens=500, messages=[{"role": "user", "content": "Count."}]
        ) as stream:
            async for _ in stream.text_stream:
                read += 1
                if read == 5:
                    break
    records = await wait_for_records(store, org.org_id, 1)
    assert len(records) == 1 and await wait_for_no_holds(store, org.org_id) == 0
    details = records[0].details
    pieces = reply_pieces(upstream.knobs.reply)
    encoding = get_encoding("o200k_base")
    relayed_counts = {
        len(encoding.encode("".join(pieces[:sent]))) for sent in range(5, len(pieces))
    }
    assert details.status == "client_disconnected"
    assert details.completion_tokens in relayed_counts
    assert records[0].charged_units == expected_units(
        details.prompt_tokens, details.completion_tokens
    )


async def test_litellm_routed_model_streams_to_the_anthropic_sdk_with_the_routes_key_and_base(
    start_gateway: StartGateway,
    org: Org,
    store: LedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    seen: list[dict[str, Any]] = []
    real = litellm.acompletion

    async def mocked(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return await real(**kwargs, mock_response="Hello from a mocked Gemini.")

    monkeypatch.setattr(litellm, "acompletion", mocked)
    monkeypatch.setenv("FAKE_GEMINI_KEY", "gemini-route-key")
    route = ModelRoute(
        model_name="gemini-flash",
        provider_model="gemini/gemini-2.5-flash",
        api_format="litellm",
        api_base="http://gemini.internal",
        api_key_env="FAKE_GEMINI_KEY",
    )
    gateway = start_gateway(model_list=[route])
    async with anthropic_client(gateway, api_key=org.token) as client:
        async with client.messages.stream(
            model="gemini-flash", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = await stream.get_final_message()
    assert message.content[0].text == "Hello from a mocked Gemini."
    assert (seen[-1]["api_key"], seen[-1]["api_base"]) == (
        "gemini-route-key",
        "http://gemini.internal",
    )
    records = await wait_for_records(store, org.org_id, 1)
    assert len(records) == 1
    details = records[0].details
    assert (details.provider, details.status) == ("gemini", "ok")
    assert (details.prompt_tokens, details.completion_tokens) == (
        message.usage.input_tokens,
        message.usage.output_tokens,
    )


async def test_count_tokens_for_a_translated_model_is_the_gateways_own_estimate(
    translated: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    messages = [{"role": "user", "content": "How many tokens is this?"}]
    async with anthropic_client(translated, api_key=org.token) as client:
        counted = await client.messages.count_tokens(
            model=CHAT_MODEL, system="Be brief.", messages=messages, tools=[WEATHER_TOOL]
        )
    assert counted.input_tokens == count_anthropic_prompt_tokens(
        "Be brief.", messages, [WEATHER_TOOL], CHAT_MODEL
    )
    assert list(upstream.requests) == []
    assert await store.usage_records(org.org_id) == []
