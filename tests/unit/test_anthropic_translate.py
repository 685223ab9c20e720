"""Anthropic Messages ⇄ OpenAI Chat Completions: requests, responses, streams and errors."""

import asyncio
from typing import Any

import orjson
import pytest

from pricing import PromptTokens, TokenCounts
from pricing.tokens import get_encoding
from proxy.anthropic.translation import (
    AnthropicStreamFromOpenAI,
    anthropic_error,
    anthropic_message,
    openai_request,
)
from proxy.call.receipt import Receipt
from proxy.errors import ApiError
from proxy.openai.counts import reported_openai_counts

MODEL = "gpt-4o-mini"


def request(**fields: Any) -> dict[str, Any]:
    return {
        "model": "public",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    } | fields


# Requests


def test_system_blocks_become_one_system_message_and_the_model_its_provider_name() -> None:
    translated = openai_request(
        request(
            system=[
                {"type": "text", "text": "A"},
                {"type": "text", "text": "B", "cache_control": {}},
            ]
        ),
        MODEL,
    )
    assert translated["model"] == MODEL
    assert translated["messages"][0] == {"role": "system", "content": "A\nB"}
    assert translated["max_completion_tokens"] == 100


def test_claude_codes_mid_conversation_system_message_folds_into_the_system_prompt() -> None:
    translated = openai_request(
        request(
            system=[{"type": "text", "text": "You are Claude Code."}],
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "say hello"}]},
                {
                    "role": "system",
                    "content": [
                        {
                            "type": "text",
                            "text": "Be brief.",
                            "cache_control": {"type": "ephemeral"},
                        }
                    ],
                    "output_config": {"effort": "medium"},
                },
                {"role": "assistant", "content": "Hello."},
                {"role": "system", "content": "Mind the tests."},
            ],
            thinking={"type": "adaptive", "display": "omitted"},
            context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            output_config={"effort": "medium"},
        ),
        MODEL,
    )
    assert translated["messages"] == [
        {"role": "system", "content": "You are Claude Code.\nBe brief.\nMind the tests."},
        {"role": "user", "content": [{"type": "text", "text": "say hello"}]},
        {"role": "assistant", "content": "Hello."},
    ]
    assert set(translated) == {"model", "messages", "max_completion_tokens"}


def test_a_deferred_tool_is_not_offered_to_an_openai_upstream() -> None:
    shown = {"name": "Bash", "input_schema": {"type": "object"}}
    deferred = {"name": "Later", "input_schema": {"type": "object"}, "defer_loading": True}
    translated = openai_request(request(tools=[shown, deferred]), MODEL)
    assert [tool["function"]["name"] for tool in translated["tools"]] == ["Bash"]
    assert "tools" not in openai_request(request(tools=[deferred]), MODEL)


def test_sampling_and_stop_settings_carry_over_and_anthropic_only_ones_do_not() -> None:
    translated = openai_request(
        request(
            temperature=0.2, top_p=0.9, top_k=5, stop_sequences=["END"], metadata={"user_id": "u"}
        ),
        MODEL,
    )
    assert (translated["temperature"], translated["top_p"], translated["stop"]) == (
        0.2,
        0.9,
        ["END"],
    )
    assert "top_k" not in translated and "metadata" not in translated


def test_a_stream_asks_the_upstream_for_its_usage() -> None:
    translated = openai_request(request(stream=True), MODEL)
    assert translated["stream"] is True
    assert translated["stream_options"] == {"include_usage": True}


def test_tool_results_lead_the_next_user_turn_as_tool_messages_with_their_images_after() -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
    }
    messages = [
        {"role": "user", "content": "Screenshot?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "plan", "signature": "sig"},
                {"type": "tool_use", "id": "t1", "name": "shot", "input": {"w": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Here:"},
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "text", "text": "done"}, image],
                },
            ],
        },
    ]
    translated = openai_request(request(messages=messages), MODEL)["messages"]
    assert translated[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "shot", "arguments": '{"w":1}'}}
        ],
    }
    assert translated[2] == {"role": "tool", "tool_call_id": "t1", "content": "done"}
    assert translated[3] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Here:"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
        ],
    }


def test_image_urls_pass_as_image_urls() -> None:
    block = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    translated = openai_request(request(messages=[{"role": "user", "content": [block]}]), MODEL)
    assert translated["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice_maps_to_openais(choice: dict[str, Any], expected: Any) -> None:
    tool = {
        "name": "f",
        "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}},
    }
    translated = openai_request(request(tools=[tool], tool_choice=choice), MODEL)
    assert translated["tool_choice"] == expected
    assert translated["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": tool["input_schema"]}}
    ]


def test_disabling_parallel_tool_use_turns_off_parallel_tool_calls() -> None:
    tool = {"name": "f", "input_schema": {"type": "object"}}
    translated = openai_request(
        request(tools=[tool], tool_choice={"type": "auto", "disable_parallel_tool_use": True}),
        MODEL,
    )
    assert translated["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        {
            "messages": [
                {"role": "user", "content": [{"type": "document", "source": {"type": "url"}}]}
            ]
        },
        {"system": [{"type": "image", "source": {}}]},
        {"messages": [{"role": "tool", "content": "no"}]},
        {"messages": [{"role": "system", "content": [{"type": "image", "source": {}}]}]},
    ],
)
def test_what_openai_cannot_take_is_refused_with_a_400(fields: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as refused:
        openai_request(request(**fields), MODEL)
    assert refused.value.status == 400


# Responses


def test_a_chat_completion_becomes_a_message_with_text_and_tool_use_blocks() -> None:
    body = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Looking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{oops"},
                        },
                    ],
                },
            }
        ],
    }
    usage = TokenCounts(input_tokens=7, output_tokens=3)
    message = anthropic_message(body, "public", usage)
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["id"].startswith("msg_")
    assert message["model"] == "public"
    assert message["stop_reason"] == "tool_use"
    assert message["content"] == [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {"_raw": "{oops"}},
    ]
    assert message["usage"] == {
        "input_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 3,
    }


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons_map_to_stop_reasons(finish: str | None, stop_reason: str) -> None:
    body = {"choices": [{"finish_reason": finish, "message": {"content": "x"}}]}
    assert anthropic_message(body, "m", TokenCounts(1, 1))["stop_reason"] == stop_reason


def test_openai_cached_prompt_tokens_become_anthropics_separate_cache_reads() -> None:
    usage = reported_openai_counts(
        {
            "prompt_tokens": 100,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 40},
        }
    )
    assert usage == TokenCounts(input_tokens=60, output_tokens=5, cache_read_input_tokens=40)
    assert reported_openai_counts({"prompt_tokens": "lots"}) is None
    assert reported_openai_counts(None) is None


def test_an_openai_error_keeps_its_message_and_status_in_anthropics_shape() -> None:
    raw = orjson.dumps({"error": {"message": "Rate limit reached", "type": "requests"}})
    assert anthropic_error(429, raw) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limit reached"},
    }
    assert anthropic_error(502, b"<html>bad gateway</html>")["error"]["type"] == "api_error"


# Streams


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + orjson.dumps({"id": "c", "choices": choices, **extra}) + b"\n\n"


def events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block.strip():
            name, data = block.split("\n")
            payload = orjson.loads(data.removeprefix("data: "))
            assert name == "event: " + payload["type"]
            out.append(payload)
    return out


def translator() -> AnthropicStreamFromOpenAI:
    return AnthropicStreamFromOpenAI(
        model_name="public", encoding_model=MODEL, prompt=PromptTokens(200, lambda: 50)
    )


def tool_delta(
    index: int, arguments: str, call_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if name:
        function["name"] = name
    call: dict[str, Any] = {"index": index, "function": function}
    if call_id:
        call["id"] = call_id
    return {"tool_calls": [call]}


def test_a_chat_stream_becomes_anthropics_event_sequence_with_the_final_usage() -> None:
    stream = translator()
    raw = b"".join(
        [
            stream.feed(chunk({"role": "assistant", "content": ""})),
            stream.feed(chunk({"content": "Hi "})),
            stream.feed(chunk({"content": "there."})),
            stream.feed(chunk(tool_delta(0, "", "call_1", "f"))),
            stream.feed(chunk(tool_delta(0, '{"a":'))),
            stream.feed(chunk(tool_delta(0, " 1}"))),
            stream.feed(chunk(tool_delta(1, "{}", "call_2", "g"))),
            stream.feed(chunk({}, "tool_calls")),
            stream.feed(
                chunk(usage={"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13})
            ),
            stream.feed(b"data: [DONE]\n\n"),
            asyncio.run(stream.flush()),
            asyncio.run(stream.close(None)),
        ]
    )
    sent = events(raw)
    assert [(e["type"], e.get("index")) for e in sent] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert sent[0]["message"]["usage"] == {"input_tokens": 50, "output_tokens": 0}
    assert sent[5]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "f",
        "input": {},
    }
    assert "".join(e["delta"]["partial_json"] for e in sent[6:8]) == '{"a": 1}'
    assert sent[12]["delta"]["stop_reason"] == "tool_use"
    assert sent[12]["usage"]["input_tokens"] == 9
    assert sent[12]["usage"]["output_tokens"] == 4
    assert stream.reported == TokenCounts(input_tokens=9, output_tokens=4)
    assert stream.content_events == 5


def test_bytes_split_anywhere_translate_the_same() -> None:
    whole = chunk({"content": "Hello"}) + chunk({}, "stop") + b"data: [DONE]\n\n"
    stream = translator()
    raw = b"".join(stream.feed(whole[i : i + 1]) for i in range(len(whole)))
    raw += asyncio.run(stream.flush()) + asyncio.run(stream.close(None))
    assert [e["type"] for e in events(raw)] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_an_upstream_that_finishes_without_done_is_still_closed_on_flush() -> None:
    stream = translator()
    stream.feed(chunk({"content": "Hi"}, "stop"))
    ending = asyncio.run(stream.flush()) + asyncio.run(stream.close(None))
    assert [e["type"] for e in events(ending)] == ["message_delta", "message_stop"]


def test_a_cut_stream_is_not_closed_and_counts_the_text_sent_so_far() -> None:
    stream = translator()
    stream.feed(chunk({"content": "The first words "}))
    stream.feed(chunk(tool_delta(0, '{"q": "x"}', "call_1", "search")))
    assert asyncio.run(stream.flush()) == b""
    assert asyncio.run(stream.close(None)) == b""
    assert stream.reported is None
    sent = "The first words " + "search" + '{"q": "x"}'
    assert stream.counted() == TokenCounts(
        input_tokens=50, output_tokens=len(get_encoding("o200k_base").encode(sent))
    )


def test_a_finished_stream_without_usage_reports_the_counted_usage_to_the_client() -> None:
    stream = translator()
    raw = stream.feed(chunk({"content": "four words right here"}, "length") + b"data: [DONE]\n\n")
    raw += asyncio.run(stream.close(None))
    delta = events(raw)[-2]
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"]["input_tokens"] == 50
    assert delta["usage"]["output_tokens"] == stream.counted().output_tokens


def test_an_error_chunk_mid_stream_becomes_anthropics_error_event_and_ends_the_stream() -> None:
    stream = translator()
    stream.feed(chunk({"content": "Hel"}))
    raw = stream.feed(b'data: {"error": {"message": "model overloaded"}}\n\n')
    raw += stream.feed(chunk({"content": "lo"}) + b"data: [DONE]\n\n")
    raw += asyncio.run(stream.flush())
    assert events(raw) == [
        {"type": "error", "error": {"type": "api_error", "message": "model overloaded"}}
    ]
    assert stream.error == {"message": "model overloaded"}


def test_the_closing_events_wait_for_the_receipt_which_goes_into_message_delta() -> None:
    stream = translator()
    sent = stream.feed(chunk({"content": "Hi"}, "stop"))
    sent += stream.feed(chunk(usage={"prompt_tokens": 9, "completion_tokens": 2}))
    sent += stream.feed(b"data: [DONE]\n\n") + asyncio.run(stream.flush())

    closing = asyncio.run(stream.close(Receipt("req_1", charged_units=7, remaining_units=0)))

    assert [e["type"] for e in events(sent)] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
    ]
    delta_event, rest = closing.split(b"\n\n", 1)
    delta = orjson.loads(delta_event.split(b"data: ")[1])
    assert delta["usage"] == {
        "input_tokens": 9,
        "output_tokens": 2,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "spu_charged": "0.000007",
        "spu_remaining": "0",
    }
    comment, stop = rest.split(b"\n\n", 1)
    assert comment == b": spu_charged=0.000007 spu_remaining=0"
    assert [e["type"] for e in events(stop)] == ["message_stop"]
