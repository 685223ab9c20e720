"""The tap on Anthropic event streams: bytes untouched, usage read, a cut stream counted."""

import asyncio
import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing import PromptTokens, TokenCounts
from pricing.tokens import get_encoding
from proxy.anthropic.stream import AnthropicStreamTap
from proxy.call.receipt import Receipt
from proxy.call.sse import MAX_PENDING_BYTES

CLAUDE = "claude-sonnet-4-6"
CL100K = get_encoding("cl100k_base")


def event(kind: str, **payload: Any) -> bytes:
    return (
        b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"
    )


START = event(
    "message_start",
    message={
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 4000,
            "output_tokens": 1,
        },
    },
)
TEXT = [
    event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    event("ping"),
    event("content_block_delta", index=0, delta={"type": "text_delta", "text": "Let me look "}),
    event("content_block_delta", index=0, delta={"type": "text_delta", "text": "at that file."}),
    event("content_block_stop", index=0),
]
TOOL = [
    event(
        "content_block_start",
        index=1,
        content_block={"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}},
    ),
    event(
        "content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": '{"file'}
    ),
    event(
        "content_block_delta",
        index=1,
        delta={"type": "input_json_delta", "partial_json": '_path": "a.py"}'},
    ),
    event("content_block_stop", index=1),
]
END = [
    event("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 42}),
    event("message_stop"),
]
WHOLE = START + b"".join(TEXT + TOOL + END)


def tap() -> AnthropicStreamTap:
    return AnthropicStreamTap(encoding_model=CLAUDE, prompt=PromptTokens(4000, lambda: 999))


@given(st.lists(st.integers(min_value=1, max_value=len(WHOLE) - 1), max_size=30))
def test_bytes_pass_unchanged_and_usage_is_read_however_the_stream_is_cut_up(
    cuts: list[int],
) -> None:
    watcher = tap()
    bounds = [0, *sorted(set(cuts)), len(WHOLE)]
    out = b"".join(watcher.feed(WHOLE[a:b]) for a, b in itertools.pairwise(bounds))
    out += asyncio.run(watcher.flush()) + asyncio.run(watcher.close(None))
    assert out == WHOLE
    assert watcher.reported == TokenCounts(
        input_tokens=12,
        output_tokens=42,
        cache_creation_input_tokens=300,
        cache_read_input_tokens=4000,
    )
    assert watcher.content_events == 4


def test_message_delta_totals_replace_the_counts_from_message_start() -> None:
    watcher = tap()
    watcher.feed(START)
    watcher.feed(
        event(
            "message_delta",
            delta={"stop_reason": "end_turn"},
            usage={"input_tokens": 15, "cache_read_input_tokens": 4100, "output_tokens": 7},
        )
    )
    assert watcher.reported == TokenCounts(
        input_tokens=15,
        output_tokens=7,
        cache_creation_input_tokens=300,
        cache_read_input_tokens=4100,
    )


def test_a_cut_stream_has_no_final_usage_and_counts_what_was_sent_with_tiktoken() -> None:
    watcher = tap()
    for piece in [START, *TEXT, *TOOL[:2]]:
        watcher.feed(piece)
    assert watcher.reported is None
    sent_text = "Let me look at that file." + "Read" + '{"file'
    assert watcher.counted() == TokenCounts(
        input_tokens=12,
        output_tokens=len(CL100K.encode(sent_text)),
        cache_creation_input_tokens=300,
        cache_read_input_tokens=4000,
    )


def test_a_stream_cut_before_message_start_falls_back_to_the_exact_prompt_count() -> None:
    watcher = tap()
    watcher.feed(TEXT[2])
    assert watcher.counted().input_tokens == 999


def test_thinking_counts_as_output_but_signatures_do_not() -> None:
    watcher = tap()
    watcher.feed(
        event(
            "content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Hmm, so"}
        )
    )
    watcher.feed(
        event(
            "content_block_delta",
            index=0,
            delta={"type": "signature_delta", "signature": "x" * 400},
        )
    )
    assert watcher.generated_text == "Hmm, so"


def test_an_error_event_is_noticed() -> None:
    watcher = tap()
    watcher.feed(START + event("error", error={"type": "overloaded_error", "message": "busy"}))
    assert watcher.error == {"type": "overloaded_error", "message": "busy"}
    assert watcher.reported is None


def test_crlf_separated_events_are_read() -> None:
    watcher = tap()
    watcher.feed(WHOLE.replace(b"\n", b"\r\n"))
    assert watcher.reported is not None
    assert watcher.reported.output_tokens == 42


def test_last_event_without_its_blank_line_is_read_on_flush() -> None:
    watcher = tap()
    watcher.feed(START + END[0].rstrip(b"\n"))
    assert watcher.reported is None
    assert asyncio.run(watcher.flush()) == b""
    assert watcher.reported is not None


def test_an_event_larger_than_the_bound_is_refused() -> None:
    watcher = tap()
    with pytest.raises(ValueError, match="larger than"):
        watcher.feed(b"data: " + b"x" * (MAX_PENDING_BYTES + 1))


def test_unreadable_usage_is_not_taken_as_final() -> None:
    watcher = tap()
    watcher.feed(event("message_delta", delta={}, usage={"output_tokens": "many"}))
    assert watcher.reported is None


def test_the_end_waits_for_the_receipt_in_message_delta_and_before_message_stop() -> None:
    watcher = tap()
    receipt = Receipt("req_1", charged_units=2_500_000, remaining_units=97_500_000)

    sent = watcher.feed(WHOLE) + asyncio.run(watcher.flush())
    closing = asyncio.run(watcher.close(receipt))

    assert sent == START + b"".join(TEXT + TOOL)
    usage = {"output_tokens": 42, "spu_charged": "2.5", "spu_remaining": "97.5"}
    assert closing == (
        event("message_delta", delta={"stop_reason": "tool_use"}, usage=usage)
        + b": spu_charged=2.5 spu_remaining=97.5\n\n"
        + END[1]
    )
