"""Responses usage as token counts, a native Responses stream tapped, its prompt estimated."""

import asyncio
from typing import Any

import orjson
import pytest

from pricing import (
    InvalidTokenCounts,
    PromptTokens,
    TokenCounts,
    count_chat_prompt_tokens,
    count_text_tokens,
)
from proxy.responses.prompt import prompt_tokens
from proxy.responses.stream_tap import ResponsesStreamTap, response_text
from proxy.responses.usage import responses_usage, token_counts
from tests.responses_samples import codex_request, function_call, function_output, user

MODEL = "gpt-4o-mini"


def usage(**fields: Any) -> dict[str, Any]:
    return {
        "input_tokens": 1000,
        "input_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 0},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 200},
        "total_tokens": 1300,
        **fields,
    }


def test_cached_input_is_its_own_price_class_and_reasoning_stays_inside_output() -> None:
    assert token_counts(usage()) == TokenCounts(
        input_tokens=400, output_tokens=300, cache_read_input_tokens=600
    )


def test_cache_writes_are_their_own_price_class() -> None:
    details = {"cached_tokens": 100, "cache_write_tokens": 250}
    assert token_counts(usage(input_tokens_details=details)) == TokenCounts(
        input_tokens=650,
        output_tokens=300,
        cache_read_input_tokens=100,
        cache_creation_input_tokens=250,
    )


def test_reasoning_beyond_the_output_count_was_left_out_of_it_and_is_added() -> None:
    counts = token_counts(usage(output_tokens=50, output_tokens_details={"reasoning_tokens": 200}))
    assert counts.output_tokens == 250


@pytest.mark.parametrize(
    "bad",
    [
        {"input_tokens": -1},
        {"output_tokens": "3"},
        {"output_tokens_details": {"reasoning_tokens": True}},
        {"input_tokens_details": {"cached_tokens": 5000}},
    ],
)
def test_unreadable_usage_is_invalid_never_free(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidTokenCounts):
        token_counts(usage(**bad))


def test_charged_counts_are_reported_back_in_responses_shape() -> None:
    counts = TokenCounts(
        input_tokens=10, output_tokens=5, cache_read_input_tokens=20, cache_creation_input_tokens=3
    )
    assert responses_usage(counts, reasoning_tokens=2) == {
        "input_tokens": 33,
        "input_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 3},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 38,
    }
    assert token_counts(responses_usage(counts)) == counts


def _event(kind: str, **fields: Any) -> bytes:
    return (
        b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"
    )


NATIVE_STREAM = b"".join(
    [
        _event("response.created", response={"id": "resp_up_1", "status": "in_progress"}),
        _event("response.output_text.delta", item_id="msg_1", delta="Hello"),
        _event("response.function_call_arguments.delta", item_id="fc_1", delta='{"a":1}'),
        _event("response.completed", response={"id": "resp_up_1", "usage": usage()}),
    ]
)


def test_the_tap_relays_bytes_unchanged_and_reads_the_id_and_the_reported_counts() -> None:
    tap = ResponsesStreamTap(encoding_model=MODEL, prompt=PromptTokens(90, lambda: 9))
    relayed = b"".join(tap.feed(NATIVE_STREAM[i : i + 7]) for i in range(0, len(NATIVE_STREAM), 7))
    assert relayed + asyncio.run(tap.flush()) + asyncio.run(tap.close(None)) == NATIVE_STREAM
    assert tap.response_id == "resp_up_1"
    assert tap.reported == token_counts(usage())
    assert tap.content_events == 2 and tap.error is None


def test_a_cut_native_stream_is_counted_from_what_it_generated() -> None:
    tap = ResponsesStreamTap(encoding_model=MODEL, prompt=PromptTokens(90, lambda: 9))
    cut = NATIVE_STREAM[: NATIVE_STREAM.index(b"event: response.completed")]
    tap.feed(cut)
    assert tap.reported is None
    assert tap.counted() == TokenCounts(
        input_tokens=9, output_tokens=count_text_tokens('Hello{"a":1}', MODEL)
    )


def test_a_failed_response_is_an_error_with_its_usage() -> None:
    tap = ResponsesStreamTap(encoding_model=MODEL, prompt=PromptTokens(90, lambda: 9))
    tap.feed(
        _event(
            "response.failed",
            response={
                "id": "r",
                "usage": usage(),
                "error": {"code": "server_error", "message": "x"},
            },
        )
    )
    assert tap.error == {"code": "server_error", "message": "x"}
    assert tap.reported == token_counts(usage())


def test_a_plain_responses_text_is_what_its_output_items_hold() -> None:
    body = {
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Hmm."}]},
            {"type": "message", "content": [{"type": "output_text", "text": "Hi."}]},
            {"type": "function_call", "name": "f", "arguments": "{}"},
        ]
    }
    assert response_text(body) == "Hmm.Hi.f{}"


def test_the_prompt_estimate_counts_like_the_chat_it_amounts_to_and_never_raises() -> None:
    body = codex_request(
        input_items=[
            user("list"),
            function_call("c1", "exec_command", {"cmd": "ls"}),
            function_output("c1", "a b c"),
        ]
    )
    estimate = prompt_tokens(body, MODEL).exact()
    chat_floor = count_chat_prompt_tokens(
        [
            {"role": "user", "content": text}
            for text in ("You are a coding agent.", "list", "a b c")
        ],
        MODEL,
        body["tools"],
    )
    assert estimate > chat_floor
    image = {"type": "input_image", "image_url": "data:image/png;base64," + "A" * 500_000}
    with_image = {"model": "m", "input": [{"role": "user", "content": [image]}]}
    assert prompt_tokens(with_image, MODEL).bound < 60_000
    for hostile in ({"input": 5}, {"input": [None, 3, {"content": 7}]}, {"instructions": ["x"]}):
        assert prompt_tokens(hostile, MODEL).bound >= prompt_tokens(hostile, MODEL).exact() > 0


def test_the_first_event_is_held_until_complete_so_its_id_is_known_before_it_goes_out() -> None:
    tap = ResponsesStreamTap(encoding_model=MODEL, prompt=PromptTokens(90, lambda: 9))
    first_end = NATIVE_STREAM.index(b"\n\n") + 2
    assert tap.feed(NATIVE_STREAM[:10]) == b""
    assert tap.response_id is None
    assert tap.feed(NATIVE_STREAM[10 : first_end + 3]) == NATIVE_STREAM[:first_end]
    assert tap.response_id == "resp_up_1"
    final_start = NATIVE_STREAM.index(b"event: response.completed")
    assert tap.feed(NATIVE_STREAM[first_end + 3 :]) == NATIVE_STREAM[first_end:final_start]
    assert asyncio.run(tap.close(None)) == NATIVE_STREAM[final_start:]


def test_a_stream_that_never_completes_an_event_still_hands_its_bytes_over_at_the_end() -> None:
    tap = ResponsesStreamTap(encoding_model=MODEL, prompt=PromptTokens(90, lambda: 9))
    assert tap.feed(b": keep-alive") == b""
    assert asyncio.run(tap.flush()) == b": keep-alive"
