"""``POST /v1/responses`` through the openai SDK: relayed natively, or translated, and metered.

Three routes: an OpenAI-format model whose upstream (the fake) serves the
Responses API itself (``responses_api: true``), the demo model (translated to
Chat Completions) and a Claude model on the fake's Messages API (translated to
Messages). Each is driven with ``client.responses.create`` and
``client.responses.stream``, with a function-tool round trip, and each charge
is worked out here from the fake's knobs and the route's prices.
"""

import re
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from ledger import LedgerStore, UsageRecord
from tests.e2e.anthropic_support import (
    SONNET,
    UPSTREAM_KEY,
    assert_charged,
)
from tests.e2e.responses_support import (
    INPUT_USD,
    NATIVE,
    OUTPUT_USD,
    native_units,
    respond,
    units,
)
from tests.e2e.support import (
    Org,
    RunningGateway,
    StartGateway,
    new_org,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.upstream import DEFAULT_REPLY, FakeUpstream, reply_pieces

DEMO = "spu-demo"
DEMO_INPUT_USD = Decimal("0.0000005")
DEMO_OUTPUT_USD = Decimal("0.0000015")
PIECES = reply_pieces(DEFAULT_REPLY)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": False,
}


def demo_units(prompt_tokens: int, output_tokens: int) -> int:
    return units(prompt_tokens * DEMO_INPUT_USD + output_tokens * DEMO_OUTPUT_USD)


async def only_record(store: LedgerStore, org: Org) -> UsageRecord:
    [record] = await wait_for_records(store, org.org_id, 1)
    assert await wait_for_no_holds(store, org.org_id) == 0
    return record


# Native relay


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_native_cached_input_is_priced_at_the_cached_rate_and_reasoning_inside_output(
    stream: bool,
    agents_gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
) -> None:
    upstream.knobs.prompt_tokens = 900
    upstream.knobs.cache_read_input_tokens = 700
    upstream.knobs.reasoning_tokens = 40
    async with agents_gateway.client(org.token) as client:
        if stream:
            async with client.responses.stream(model=NATIVE, input="Hello") as events:
                kinds = [event.type async for event in events]
                response = await events.get_final_response()
            assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
            assert kinds.count("response.output_text.delta") == len(PIECES)
        else:
            response = await client.responses.create(model=NATIVE, input="Hello")
    assert response.output_text == DEFAULT_REPLY
    assert response.id.startswith("resp_fake")
    [seen] = upstream.requests
    assert (seen.path, seen.body["model"], seen.body["input"]) == ("/v1/responses", NATIVE, "Hello")
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    record = await only_record(store, org)
    output = len(PIECES) + 40
    assert (record.details.prompt_tokens, record.details.completion_tokens) == (900, output)
    assert (record.details.operation, record.details.source) == ("responses", "openai")
    assert record.charged_units == native_units(uncached=200, cached=700, output=output)


async def test_native_function_call_round_trip(
    agents_gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.tool_use = ("get_weather", {"city": "Paris"})
    async with agents_gateway.client(org.token) as client:
        async with client.responses.stream(
            model=NATIVE, input="Weather in Paris?", tools=[WEATHER]
        ) as events:
            first = await events.get_final_response()
        call = first.output[-1]
        assert call.type == "function_call"
        assert (call.name, call.arguments) == ("get_weather", '{"city":"Paris"}')
        upstream.knobs.tool_use = None
        history: list[Any] = [
            {"role": "user", "content": "Weather in Paris?"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": "18 C, sunny"},
        ]
        second = await client.responses.create(model=NATIVE, input=history, tools=[WEATHER])
    assert second.output_text == DEFAULT_REPLY
    assert upstream.requests[-1].body["input"][-1]["call_id"] == call.call_id
    records = await wait_for_records(store, org.org_id, 2)
    each = native_units(uncached=17, cached=0, output=len(PIECES))
    assert [record.charged_units for record in records] == [each, each]
    assert await wait_for_no_holds(store, org.org_id) == 0


async def test_native_refusal_is_relayed_with_its_status_and_costs_nothing(
    agents_gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.fail_status = 429
    async with agents_gateway.client(org.token) as client:
        with pytest.raises(openai.RateLimitError) as refused:
            await client.responses.create(model=NATIVE, input="Hello")
    assert refused.value.status_code == 429
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["message"] == upstream.knobs.fail_message
    assert refused.value.body["type"] == "server_error"
    assert await store.usage_records(org.org_id) == []
    assert await wait_for_no_holds(store, org.org_id) == 0


# Translated to Chat Completions (the demo model)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_demo_answers_a_function_round_trip_and_charges_what_it_reports(
    stream: bool, agents_gateway: RunningGateway, org: Org, store: LedgerStore
) -> None:
    history: list[Any] = [
        {"role": "developer", "content": "You are a helpful agent."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "18 C, sunny"},
        {"role": "user", "content": "Thanks, say hello"},
    ]
    request: dict[str, Any] = {
        "model": DEMO,
        "input": history,
        "tools": [WEATHER, {"type": "web_search", "external_web_access": False}],
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"summary": "auto"},
        "parallel_tool_calls": True,
        "prompt_cache_key": "session-1",
    }
    async with agents_gateway.client(org.token) as client:
        response = await respond(client, stream, **request)
    assert response.status == "completed" and response.model == DEMO
    assert response.output_text.endswith("You said: Thanks, say hello")
    usage = response.usage
    assert usage is not None and usage.output_tokens > 0
    record = await only_record(store, org)
    assert (record.details.prompt_tokens, record.details.completion_tokens) == (
        usage.input_tokens,
        usage.output_tokens,
    )
    assert record.details.operation == "responses"
    assert record.charged_units == demo_units(usage.input_tokens, usage.output_tokens)


async def test_demo_stops_at_max_output_tokens_and_the_response_is_incomplete(
    agents_gateway: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with agents_gateway.client(org.token) as client:
        response = await client.responses.create(
            model=DEMO, input="Hello there", max_output_tokens=12
        )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    record = await only_record(store, org)
    assert record.details.completion_tokens == 12


# Translated to Anthropic Messages


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_claude_function_round_trip_with_cache_reads_and_writes_priced_apart(
    stream: bool,
    agents_gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
) -> None:
    upstream.knobs.prompt_tokens = 40
    upstream.knobs.cache_read_input_tokens = 500
    upstream.knobs.cache_creation_input_tokens = 30
    upstream.knobs.tool_use = ("get_weather", {"city": "Paris"})
    request: dict[str, Any] = {
        "model": SONNET,
        "instructions": "Be brief.",
        "input": "Weather in Paris?",
        "tools": [WEATHER],
        "max_output_tokens": 1000,
    }
    async with agents_gateway.client(org.token) as client:
        first = await respond(client, stream, **request)
        call = first.output[-1]
        assert call.type == "function_call"
        assert (call.name, call.arguments) == ("get_weather", '{"city":"Paris"}')
        usage = first.usage
        assert usage is not None
        assert (usage.input_tokens, usage.input_tokens_details.cached_tokens) == (570, 500)
        upstream.knobs.tool_use = None
        history: list[Any] = [
            {"role": "user", "content": "Weather in Paris?"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": "18 C"},
        ]
        second = await client.responses.create(model=SONNET, input=history, tools=[WEATHER])
    assert second.output_text == DEFAULT_REPLY
    sent = upstream.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.body["messages"][-1] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": call.call_id,
                "content": [{"type": "text", "text": "18 C"}],
            }
        ],
    }
    asked = upstream.requests[0].body
    assert (asked["max_tokens"], asked["system"]) == (1000, [{"type": "text", "text": "Be brief."}])
    for record in await wait_for_records(store, org.org_id, 2):
        assert_charged(
            record,
            SONNET,
            input_tokens=40,
            output_tokens=len(PIECES),
            cache_creation_input_tokens=30,
            cache_read_input_tokens=500,
        )
    assert await wait_for_no_holds(store, org.org_id) == 0


# Refusals and bad input


async def test_not_enough_credit_is_a_402_with_the_same_figures_as_chat(
    agents_gateway: RunningGateway, store: LedgerStore, upstream: FakeUpstream
) -> None:
    poor = await new_org(store, spus=Decimal("0.01"))
    async with agents_gateway.client(poor.token) as client:
        with pytest.raises(openai.APIStatusError) as on_responses:
            await client.responses.create(model=NATIVE, input="Hello", max_output_tokens=1000)
        with pytest.raises(openai.APIStatusError) as on_chat:
            await client.chat.completions.create(
                model=NATIVE, messages=[{"role": "user", "content": "Hello"}], max_tokens=1000
            )
    refused = on_responses.value
    assert refused.status_code == on_chat.value.status_code == 402
    assert refused.body == on_chat.value.body
    assert isinstance(refused.body, dict)
    assert (refused.body["code"], refused.body["type"]) == (
        "insufficient_credits",
        "insufficient_quota",
    )
    found = re.search(r"\((\d+) prompt tokens \+ up to 1000 output tokens\)", refused.message)
    assert found is not None
    needed = units(int(found.group(1)) * INPUT_USD + 1000 * OUTPUT_USD)
    assert Decimal(str(refused.body["needed_spus"])) * 1_000_000 == needed
    assert refused.body["available_spus"] == "0.01"
    assert list(upstream.requests) == []
    assert await store.usage_records(poor.org_id) == []


async def test_without_max_output_tokens_the_hold_is_for_the_default_bound(
    start_gateway: StartGateway, store: LedgerStore
) -> None:
    demo = start_gateway(model_list=[], demo_model=True, default_max_tokens=3000)
    poor = await new_org(store, spus=Decimal("0.0001"))
    async with demo.client(poor.token) as client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.responses.create(model=DEMO, input="Hello")
    assert refused.value.status_code == 402
    assert "up to 3000 output tokens" in refused.value.message


@pytest.mark.parametrize(
    ("model", "fields", "param"),
    [
        (DEMO, {"stream": "yes"}, "stream"),
        (DEMO, {"input": 5}, "input"),
        (DEMO, {"input": []}, "input"),
        (DEMO, {"instructions": ["x"]}, "instructions"),
        (DEMO, {"max_output_tokens": 0}, "max_output_tokens"),
        (DEMO, {"tools": {"type": "function"}}, "tools"),
        (DEMO, {"tools": [{"type": "code_interpreter"}]}, "tools[0]"),
        (DEMO, {"previous_response_id": "resp_1"}, "previous_response_id"),
        (DEMO, {"input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
        (SONNET, {"text": {"format": {"type": "json_object"}}}, "text.format"),
        (NATIVE, {"background": True}, "background"),
        (NATIVE, {"conversation": "conv_1"}, "conversation"),
        (NATIVE, {"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ],
)
async def test_bad_or_unmeterable_input_is_a_400_naming_the_parameter_before_any_hold(
    model: str,
    fields: dict[str, Any],
    param: str,
    agents_gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
) -> None:
    async with httpx.AsyncClient(base_url=agents_gateway.url) as client:
        answer = await client.post(
            "/v1/responses",
            json={"model": model, "input": "Hello", **fields},
            headers={"authorization": f"Bearer {org.token}"},
        )
        after = await client.post(
            "/v1/responses",
            json={"model": DEMO, "input": "Hello"},
            headers={"authorization": f"Bearer {org.token}"},
        )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["param"], error["type"]) == (param, "invalid_request_error")
    assert after.status_code == 200
    assert list(upstream.requests) == []
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.model == DEMO


async def test_an_anthropic_upstreams_refusal_comes_back_in_openais_shape(
    agents_gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.fail_status = 529
    async with agents_gateway.client(org.token) as client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.responses.create(model=SONNET, input="Hello")
    assert refused.value.status_code == 529
    assert refused.value.body == {
        "message": upstream.knobs.fail_message,
        "type": "api_error",
        "param": None,
        "code": None,
    }
    assert await store.usage_records(org.org_id) == []
    assert await wait_for_no_holds(store, org.org_id) == 0
