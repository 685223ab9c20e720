"""Responses ⇄ Anthropic Messages, for Claude models on a native Anthropic upstream."""

import asyncio
from typing import Any

import orjson
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from pricing import PromptTokens, TokenCounts, counts_from_anthropic
from proxy.errors import ApiError
from proxy.responses.anthropic_request import REDACTED_THINKING_PREFIX, anthropic_request
from proxy.responses.from_anthropic import ResponsesFromAnthropic, response_from_anthropic
from tests.responses_samples import codex_request, function_call, function_output, sse_events, user

EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)


def translate(body: dict[str, Any], max_tokens: int = 4096) -> dict[str, Any]:
    return anthropic_request(body, "claude-sonnet-4-6", max_tokens=max_tokens).body


def test_a_codex_tool_round_trip_becomes_alternating_turns_with_thinking_handed_back() -> None:
    body = codex_request(
        input_items=[
            user("list files"),
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "I should run ls."}],
                "encrypted_content": "sig-abc",
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Listing."}],
            },
            function_call("call_a", "exec_command", {"cmd": "ls"}),
            function_call("call_b", "spawn_agent", {"task": "t"}, namespace="multi_agent_v1"),
            function_output("call_a", "a.txt"),
            function_output("call_b", "spawned"),
            user("thanks"),
        ]
    )
    request = translate(body, max_tokens=32_000)
    assert request["model"] == "claude-sonnet-4-6" and request["max_tokens"] == 32_000
    assert request["system"] == [
        {"type": "text", "text": "You are a coding agent."},
        {"type": "text", "text": "<skills>none</skills>"},
        {"type": "text", "text": "<permissions>read-only</permissions>"},
    ]
    assert request["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<environment_context/>"},
                {"type": "text", "text": "list files"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "sig-abc"},
                {"type": "text", "text": "Listing."},
                {
                    "type": "tool_use",
                    "id": "call_a",
                    "name": "exec_command",
                    "input": {"cmd": "ls"},
                },
                {
                    "type": "tool_use",
                    "id": "call_b",
                    "name": "multi_agent_v1__spawn_agent",
                    "input": {"task": "t"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_a",
                    "content": [{"type": "text", "text": "a.txt"}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "call_b",
                    "content": [{"type": "text", "text": "spawned"}],
                },
                {"type": "text", "text": "thanks"},
            ],
        },
    ]
    assert [tool["name"] for tool in request["tools"]] == [
        "exec_command",
        "multi_agent_v1__spawn_agent",
    ]
    assert request["tools"][0]["input_schema"]["required"] == ["cmd"]
    assert request["tool_choice"] == {"type": "auto"}
    assert request["stream"] is True
    for dropped in (
        "store",
        "include",
        "prompt_cache_key",
        "client_metadata",
        "reasoning",
        "input",
    ):
        assert dropped not in request


def test_reasoning_without_a_signature_is_left_out_and_redacted_thinking_goes_back_whole() -> None:
    body = {
        "model": "m",
        "input": [
            user("hi"),
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "x"}]},
            {
                "type": "reasoning",
                "id": "rs_2",
                "summary": [],
                "encrypted_content": REDACTED_THINKING_PREFIX + "blob",
            },
            {"type": "message", "role": "assistant", "content": "Hello."},
        ],
    }
    assert translate(body)["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "redacted_thinking", "data": "blob"},
            {"type": "text", "text": "Hello."},
        ],
    }


def test_images_files_and_settings_map_to_their_messages_forms() -> None:
    body = {
        "model": "m",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBOR"},
                    {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
                    {
                        "type": "input_file",
                        "filename": "a.pdf",
                        "file_data": "data:application/pdf;base64,JVBER",
                    },
                ],
            }
        ],
        "reasoning": {"effort": "high"},
        "parallel_tool_calls": False,
        "tools": [
            {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}
        ],
        "tool_choice": "required",
        "temperature": 1,
        "user": "u-7",
    }
    request = translate(body, max_tokens=10_000)
    assert request["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"},
            "title": "a.pdf",
        },
    ]
    assert request["thinking"] == {"type": "enabled", "budget_tokens": 9_999}
    assert request["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert request["tools"] == [{"name": "f", "input_schema": {"type": "object"}}]
    assert (request["temperature"], request["metadata"]) == (1, {"user_id": "u-7"})
    assert "thinking" not in translate({**body, "reasoning": {"effort": "low"}}, max_tokens=1000)
    assert "thinking" not in translate({**body, "reasoning": {"effort": "none"}})


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"text": {"format": {"type": "json_schema", "name": "a", "schema": {}}}}, "text.format"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]},
            "input",
        ),
    ],
)
def test_what_messages_cannot_take_is_a_400_naming_the_parameter(
    change: dict[str, Any], param: str
) -> None:
    with pytest.raises(ApiError) as caught:
        translate({"model": "m", "input": "hi", **change})
    assert (caught.value.status, caught.value.param) == (400, param)


def _event(kind: str, **payload: Any) -> bytes:
    return (
        b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"
    )


START_USAGE = {
    "input_tokens": 12,
    "cache_creation_input_tokens": 300,
    "cache_read_input_tokens": 5000,
    "output_tokens": 1,
}


def claude_stream(*, stop_reason: str = "tool_use", output_tokens: int = 42) -> bytes:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "usage": START_USAGE,
    }
    return b"".join(
        [
            _event("message_start", message=message),
            _event(
                "content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}
            ),
            _event(
                "content_block_delta",
                index=0,
                delta={"type": "thinking_delta", "thinking": "Run ls"},
            ),
            _event(
                "content_block_delta",
                index=0,
                delta={"type": "signature_delta", "signature": "sig-9"},
            ),
            _event("content_block_stop", index=0),
            _event("content_block_start", index=1, content_block={"type": "text", "text": ""}),
            _event("ping"),
            _event(
                "content_block_delta", index=1, delta={"type": "text_delta", "text": "Listing."}
            ),
            _event("content_block_stop", index=1),
            _event(
                "content_block_start",
                index=2,
                content_block={
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "multi_agent_v1__spawn_agent",
                    "input": {},
                },
            ),
            _event(
                "content_block_delta",
                index=2,
                delta={"type": "input_json_delta", "partial_json": '{"task"'},
            ),
            _event(
                "content_block_delta",
                index=2,
                delta={"type": "input_json_delta", "partial_json": ':"t"}'},
            ),
            _event("content_block_stop", index=2),
            _event(
                "message_delta",
                delta={"stop_reason": stop_reason, "stop_sequence": None},
                usage={"output_tokens": output_tokens},
            ),
            _event("message_stop"),
        ]
    )


def translator(request: dict[str, Any] | None = None) -> ResponsesFromAnthropic:
    body = request or codex_request()
    return ResponsesFromAnthropic(
        body,
        tools=anthropic_request(body, "c", max_tokens=100).tools,
        model_name="claude-sonnet-4-6",
        encoding_model="claude-sonnet-4-6",
        prompt=PromptTokens(990, lambda: 99),
    )


def run(stream: bytes, tap: ResponsesFromAnthropic) -> list[dict[str, Any]]:
    events = sse_events(
        b"".join(tap.feed(stream[i : i + 50]) for i in range(0, len(stream), 50))
        + asyncio.run(tap.flush())
        + asyncio.run(tap.close(None))
    )
    for event in events:
        EVENTS.validate_python(event)
    return events


def test_a_claude_stream_becomes_reasoning_message_and_call_items_with_cache_aware_usage() -> None:
    tap = translator()
    events = run(claude_stream(), tap)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    response = events[-1]["response"]
    Response.model_validate(response)
    reasoning, message, call = response["output"]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "Run ls"}]
    assert reasoning["encrypted_content"] == "sig-9"
    assert message["content"][0]["text"] == "Listing."
    assert (call["name"], call["namespace"], call["call_id"], call["arguments"]) == (
        "spawn_agent",
        "multi_agent_v1",
        "toolu_1",
        '{"task":"t"}',
    )
    expected = counts_from_anthropic({**START_USAGE, "output_tokens": 42})
    assert tap.reported == expected
    assert response["usage"] == {
        "input_tokens": 5312,
        "input_tokens_details": {"cached_tokens": 5000, "cache_write_tokens": 300},
        "output_tokens": 42,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 5354,
    }


def test_the_signature_stays_out_unless_encrypted_reasoning_is_included() -> None:
    request = {**codex_request(), "include": []}
    events = run(claude_stream(), translator(request))
    assert "encrypted_content" not in events[-1]["response"]["output"][0]


def test_a_claude_stream_cut_at_max_tokens_ends_incomplete() -> None:
    events = run(claude_stream(stop_reason="max_tokens"), translator())
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_an_error_event_fails_the_response_and_a_cut_stream_is_counted() -> None:
    tap = translator()
    stream = claude_stream()
    cut = stream[: stream.index(b"event: content_block_stop")] + _event(
        "error", error={"type": "overloaded_error", "message": "Overloaded"}
    )
    events = run(cut, tap)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["message"] == "Overloaded"
    assert tap.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert tap.reported is None
    assert tap.counted().cache_read_input_tokens == 5000


def test_a_plain_claude_message_has_the_shape_the_stream_ends_with() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "stop_reason": "end_turn",
        "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": "sig-1"},
            {"type": "redacted_thinking", "data": "zzz"},
            {"type": "text", "text": "Hi."},
            {"type": "tool_use", "id": "toolu_2", "name": "exec_command", "input": {"cmd": "ls"}},
        ],
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    request = codex_request()
    response = response_from_anthropic(
        message,
        request,
        tools=anthropic_request(request, "c", max_tokens=100).tools,
        model_name="claude-sonnet-4-6",
        usage=TokenCounts(input_tokens=3, output_tokens=4),
    )
    Response.model_validate(response)
    assert [item["type"] for item in response["output"]] == [
        "reasoning",
        "reasoning",
        "message",
        "function_call",
    ]
    thinking, redacted = response["output"][:2]
    assert (thinking["encrypted_content"], redacted["encrypted_content"]) == (
        "sig-1",
        REDACTED_THINKING_PREFIX + "zzz",
    )
    assert response["output"][3]["arguments"] == '{"cmd":"ls"}'
    assert response["status"] == "completed"
    again = translate({"model": "m", "input": [user("hi"), *response["output"]]})
    assert [block["type"] for block in again["messages"][1]["content"]] == [
        "thinking",
        "redacted_thinking",
        "text",
        "tool_use",
    ]


def test_each_streamed_thinking_block_is_its_own_reasoning_item() -> None:
    stream = claude_stream()
    second = _event(
        "content_block_start", index=9, content_block={"type": "redacted_thinking", "data": "r"}
    ) + _event("content_block_stop", index=9)
    at = stream.index(b'event: content_block_start\ndata: {"type":"content_block_start","index":1')
    events = run(stream[:at] + second + stream[at:], translator())
    output = events[-1]["response"]["output"]
    assert [item["type"] for item in output] == [
        "reasoning",
        "reasoning",
        "message",
        "function_call",
    ]
    assert [item.get("encrypted_content") for item in output[:2]] == [
        "sig-9",
        REDACTED_THINKING_PREFIX + "r",
    ]
