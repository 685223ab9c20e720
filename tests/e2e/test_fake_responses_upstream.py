"""The fake upstream's Responses API, read by the openai SDK itself: what the relay tests stand on.

The gateway's ``/v1/responses`` relay is proven against this fake, so the fake
must be what the SDK accepts from OpenAI: plain and streamed answers with
cached and reasoning usage, function calls, and stored responses.
"""

import openai
import pytest
from openai import AsyncOpenAI

from tests.fakes.upstream import DEFAULT_REPLY, FakeUpstream, reply_pieces


@pytest.fixture
def client(upstream_server: tuple[FakeUpstream, str], upstream: FakeUpstream) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=f"{upstream_server[1]}/v1", api_key="sk-fake", max_retries=0, timeout=10.0
    )


async def test_a_plain_response_reports_cached_and_reasoning_usage(
    client: AsyncOpenAI, upstream: FakeUpstream
) -> None:
    upstream.knobs.prompt_tokens = 900
    upstream.knobs.cache_read_input_tokens = 700
    upstream.knobs.reasoning_tokens = 40
    response = await client.responses.create(model="gpt-5", input="Hello")
    assert response.output_text == DEFAULT_REPLY
    assert response.status == "completed"
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens) == (900, 700)
    pieces = len(reply_pieces(DEFAULT_REPLY))
    assert usage.output_tokens == pieces + 40
    assert usage.output_tokens_details.reasoning_tokens == 40
    assert upstream.requests[-1].body == {"model": "gpt-5", "input": "Hello"}


async def test_a_streamed_function_call_reaches_the_sdk_whole(
    client: AsyncOpenAI, upstream: FakeUpstream
) -> None:
    upstream.knobs.tool_use = ("get_weather", {"city": "Paris", "unit": "C"})
    tool = {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": False,
    }
    async with client.responses.stream(model="gpt-5", input="Weather?", tools=[tool]) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds.count("response.output_text.delta") == len(reply_pieces(DEFAULT_REPLY))
    assert kinds.count("response.function_call_arguments.delta") == 3
    assert kinds[-1] == "response.completed"
    message, call = final.output
    assert message.type == "message" and call.type == "function_call"
    assert (call.name, call.arguments) == ("get_weather", '{"city":"Paris","unit":"C"}')
    assert upstream.streams_finished == 1


async def test_max_output_tokens_ends_a_response_incomplete(
    client: AsyncOpenAI, upstream: FakeUpstream
) -> None:
    response = await client.responses.create(model="gpt-5", input="Hi", max_output_tokens=3)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "".join(reply_pieces(DEFAULT_REPLY, 3))


async def test_a_stored_response_is_read_listed_and_deleted_then_gone(
    client: AsyncOpenAI, upstream: FakeUpstream
) -> None:
    created = await client.responses.create(
        model="gpt-5", input=[{"role": "user", "content": "Remember me"}]
    )
    unstored = await client.responses.create(model="gpt-5", input="Forget me", store=False)
    assert set(upstream.stored_responses) == {created.id}
    fetched = await client.responses.retrieve(created.id)
    assert fetched.output_text == created.output_text
    items = await client.responses.input_items.list(created.id)
    assert [item.role for item in items.data] == ["user"]  # type: ignore[union-attr]
    await client.responses.delete(created.id)
    for gone in (created.id, unstored.id):
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(gone)
    assert [request.method for request in upstream.requests] == [
        "POST",
        "POST",
        "GET",
        "GET",
        "DELETE",
        "GET",
        "GET",
    ]
