"""Chat Completions answers → Responses, streamed event by event or whole.

Every event and response is also validated against the openai SDK's own
Responses types, an independent statement of the wire format.
"""

import asyncio
from typing import Any

import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from pricing import PromptTokens, TokenCounts, count_text_tokens
from proxy.responses.chat_request import chat_request
from proxy.responses.from_chat import ResponsesFromChat, response_from_chat
from proxy.responses.tools import Tools
from tests.responses_samples import chat_chunks, codex_request, delta, sse_events, usage_chunk

EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)
ENCODING_MODEL = "gpt-4o-mini"


def tap(request: dict[str, Any] | None = None, *, estimate: int = 40) -> ResponsesFromChat:
    body = request or codex_request()
    return ResponsesFromChat(
        body,
        tools=chat_request(body, "m").tools,
        model_name="spu-demo",
        encoding_model=ENCODING_MODEL,
        prompt=PromptTokens(10 * estimate, lambda: estimate),
    )


def run(stream: bytes, translator: ResponsesFromChat | None = None) -> list[dict[str, Any]]:
    translator = translator or tap()
    raw = (
        translator.feed(stream)
        + asyncio.run(translator.flush())
        + asyncio.run(translator.close(None))
    )
    events = sse_events(raw)
    for event in events:
        EVENTS.validate_python(event)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


TEXT_STREAM = chat_chunks(
    delta(role="assistant", content=""),
    delta(content="Hello"),
    delta(content=" there"),
    delta("stop"),
    usage_chunk(120, 9, cached=100, reasoning=4),
)


def test_a_text_stream_becomes_the_event_sequence_codex_reads() -> None:
    translator = tap()
    events = run(TEXT_STREAM, translator)
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event["delta"] for event in events[4:6]] == ["Hello", " there"]
    message = events[-2]["item"]
    assert message["content"][0]["text"] == "Hello there"
    assert (message["type"], message["role"], message["status"]) == (
        "message",
        "assistant",
        "completed",
    )
    response = events[-1]["response"]
    Response.model_validate(response)
    assert response["id"] == events[0]["response"]["id"] == translator.response_id
    assert response["status"] == "completed" and response["output"] == [message]
    assert response["model"] == "spu-demo" and response["store"] is False
    assert response["usage"] == {
        "input_tokens": 120,
        "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 0},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 129,
    }
    assert translator.reported == TokenCounts(
        input_tokens=20, output_tokens=9, cache_read_input_tokens=100
    )


def test_events_go_out_as_each_chunk_completes_never_held_for_the_end() -> None:
    translator = tap()
    blocks = [block + b"\n\n" for block in TEXT_STREAM.split(b"\n\n") if block]
    sent = [sse_events(translator.feed(block)) for block in blocks]
    assert types(sent[0]) == ["response.created", "response.in_progress"]
    assert types(sent[1]) == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert sent[1][-1]["delta"] == "Hello"
    assert [event["delta"] for event in sent[2]] == [" there"]
    assert sent[3] == [] and sent[4] == [] and sent[5] == []
    assert asyncio.run(translator.flush()) == b""
    assert types(sse_events(asyncio.run(translator.close(None))))[-1] == "response.completed"


def test_a_tool_call_streams_as_a_function_call_item_with_its_argument_pieces() -> None:
    events = run(
        chat_chunks(
            delta(role="assistant", content="Checking."),
            delta(
                tool_calls=[
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "multi_agent_v1__spawn_agent", "arguments": ""},
                    }
                ]
            ),
            delta(tool_calls=[{"index": 0, "function": {"arguments": '{"task":'}}]),
            delta(tool_calls=[{"index": 0, "function": {"arguments": '"t"}'}}]),
            delta("tool_calls"),
            usage_chunk(50, 12),
        )
    )
    kinds = types(events)
    message_done = kinds.index("response.output_item.done")
    call_added = len(kinds) - 1 - kinds[::-1].index("response.output_item.added")
    assert message_done < call_added
    added = events[call_added]["item"]
    assert (added["type"], added["name"], added["namespace"]) == (
        "function_call",
        "spawn_agent",
        "multi_agent_v1",
    )
    assert added["call_id"] == "call_1" and added["arguments"] == ""
    pieces = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert pieces == ['{"task":', '"t"}']
    [done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert (done["name"], done["arguments"]) == ("spawn_agent", '{"task":"t"}')
    output = events[-1]["response"]["output"]
    assert [item["type"] for item in output] == ["message", "function_call"]
    assert output[1]["status"] == "completed" and output[1]["arguments"] == '{"task":"t"}'


def test_a_stream_cut_at_the_output_bound_ends_incomplete() -> None:
    events = run(chat_chunks(delta(content="Hel"), delta("length"), usage_chunk(10, 3)))
    assert events[-1]["type"] == "response.incomplete"
    response = events[-1]["response"]
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def test_without_reported_usage_the_stream_counts_what_it_generated() -> None:
    translator = tap(estimate=77)
    events = run(chat_chunks(delta(content="Hello there, fox."), delta("stop")), translator)
    assert translator.reported is None
    counted = count_text_tokens("Hello there, fox.", ENCODING_MODEL)
    assert translator.counted() == TokenCounts(input_tokens=77, output_tokens=counted)
    assert events[-1]["response"]["usage"]["output_tokens"] == counted
    assert events[-1]["response"]["usage"]["input_tokens"] == 77


def test_an_upstream_error_chunk_fails_the_response() -> None:
    translator = tap()
    stream = chat_chunks(delta(content="Hi"), done=False) + (
        b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    )
    events = run(stream, translator)
    assert types(events)[-3:] == [
        "response.content_part.done",
        "response.output_item.done",
        "response.failed",
    ]
    assert events[-1]["response"]["error"] == {"code": "server_error", "message": "overloaded"}
    assert translator.error == {"message": "overloaded", "type": "server_error"}
    assert translator.content_events == 1


def test_a_stream_that_stops_before_finishing_fails_and_one_that_finished_completes() -> None:
    unfinished = run(chat_chunks(delta(content="Hi"), done=False))
    assert unfinished[-1]["type"] == "response.failed"
    finished = run(chat_chunks(delta(content="Hi"), delta("stop"), done=False))
    assert finished[-1]["type"] == "response.completed"


def test_reasoning_deltas_become_a_reasoning_item_before_the_message() -> None:
    events = run(
        chat_chunks(
            delta(reasoning_content="Think"),
            delta(reasoning_content="ing."),
            delta(content="Done."),
            delta("stop"),
            usage_chunk(5, 8, reasoning=3),
        )
    )
    output = events[-1]["response"]["output"]
    assert [item["type"] for item in output] == ["reasoning", "message"]
    assert output[0]["content"] == [{"type": "reasoning_text", "text": "Thinking."}]
    reasoning_deltas = [e for e in events if e["type"] == "response.reasoning_text.delta"]
    assert [e["delta"] for e in reasoning_deltas] == ["Think", "ing."]


def test_a_custom_tool_call_comes_back_with_its_text_input() -> None:
    request = {
        "model": "m",
        "input": "patch",
        "tools": [{"type": "custom", "name": "apply_patch"}],
    }
    events = run(
        chat_chunks(
            delta(
                tool_calls=[
                    {"index": 0, "id": "c1", "function": {"name": "apply_patch", "arguments": ""}}
                ]
            ),
            delta(tool_calls=[{"index": 0, "function": {"arguments": '{"input": "*** Be'}}]),
            delta(tool_calls=[{"index": 0, "function": {"arguments": 'gin"}'}}]),
            delta("tool_calls"),
        ),
        tap(request),
    )
    [item] = events[-1]["response"]["output"]
    assert (item["type"], item["name"], item["input"]) == (
        "custom_tool_call",
        "apply_patch",
        "*** Begin",
    )
    [done] = [e for e in events if e["type"] == "response.custom_tool_call_input.done"]
    assert done["input"] == "*** Begin"


@pytest.mark.parametrize(("finish", "status"), [("stop", "completed"), ("length", "incomplete")])
def test_a_plain_answer_has_the_shape_the_stream_ends_with(finish: str, status: str) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "message": {
                    "role": "assistant",
                    "content": "Running it.",
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "exec_command", "arguments": '{"cmd":"ls"}'},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37},
    }
    request = codex_request()
    response = response_from_chat(
        body,
        request,
        tools=chat_request(request, "m").tools,
        model_name="spu-demo",
        usage=TokenCounts(input_tokens=30, output_tokens=7),
    )
    Response.model_validate(response)
    assert response["status"] == status
    message, call = response["output"]
    assert message["content"][0]["text"] == "Running it."
    assert (call["type"], call["call_id"], call["name"], call["arguments"]) == (
        "function_call",
        "call_9",
        "exec_command",
        '{"cmd":"ls"}',
    )
    assert "namespace" not in call
    assert response["usage"]["input_tokens"] == 30 and response["usage"]["output_tokens"] == 7
    assert response["tools"] == request["tools"] and response["tool_choice"] == "auto"


def test_a_name_the_model_made_up_is_passed_on_as_a_plain_function() -> None:
    assert Tools().called("invented").name == "invented"
