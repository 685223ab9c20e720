"""The OpenAI stream tap relays bytes unchanged however they are split, minus one chunk, and
ends with the receipt."""

import asyncio
from itertools import pairwise

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing import PromptTokens, TokenCounts, count_text_tokens
from proxy.call.metered_call import Ending
from proxy.call.receipt import Receipt
from proxy.call.sse import MAX_PENDING_BYTES
from proxy.openai.stream import UNREAD_LIMIT_BYTES, OpenAIStreamTap

USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
REPORTED = TokenCounts(input_tokens=5, output_tokens=3)


def event(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def chunk(content: str, *, usage: object = None) -> bytes:
    return event({"choices": [{"index": 0, "delta": {"content": content}}], "usage": usage})


CONTENT = [chunk("Hel"), chunk("lo "), chunk("wörld")]
USAGE_CHUNK = event({"choices": [], "usage": USAGE})
DONE = b"data: [DONE]\n\n"
STREAM = b"".join([*CONTENT, USAGE_CHUNK, DONE])


def new_tap(*, drop_usage_chunk: bool) -> OpenAIStreamTap:
    return OpenAIStreamTap(
        drop_usage_chunk=drop_usage_chunk,
        encoding_model="gpt-4o-mini",
        prompt=PromptTokens(20, lambda: 5),
    )


def relay(tap: OpenAIStreamTap, pieces: list[bytes]) -> bytes:
    return (
        b"".join(tap.feed(piece) for piece in pieces)
        + asyncio.run(tap.flush())
        + asyncio.run(tap.close(None))
    )


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[start:end] for start, end in pairwise(points)]


@given(st.lists(st.integers(min_value=0), max_size=12))
def test_usage_chunk_is_dropped_for_a_client_that_did_not_ask_however_bytes_are_split(
    cuts: list[int],
) -> None:
    tap = new_tap(drop_usage_chunk=True)
    assert relay(tap, split(STREAM, cuts)) == b"".join([*CONTENT, DONE])
    assert tap.reported == REPORTED
    assert tap.generated_text == "Hello wörld"
    assert tap.content_events == 3


@given(st.lists(st.integers(min_value=0), max_size=12))
def test_stream_passes_unchanged_when_the_client_asked_for_usage(cuts: list[int]) -> None:
    tap = new_tap(drop_usage_chunk=False)
    assert relay(tap, split(STREAM, cuts)) == STREAM
    assert tap.reported == REPORTED


def test_usage_riding_on_a_content_chunk_is_kept_and_relayed() -> None:
    tap = new_tap(drop_usage_chunk=True)
    last = chunk("!", usage=USAGE)
    assert relay(tap, [last]) == last
    assert tap.reported == REPORTED


def test_crlf_separated_events_and_comments_pass_through() -> None:
    data = b": keep-alive\r\n\r\n" + chunk("a").replace(b"\n\n", b"\r\n\r\n")
    tap = new_tap(drop_usage_chunk=True)
    assert relay(tap, [data[:7], data[7:]]) == data
    assert tap.generated_text == "a"


def test_tool_call_arguments_and_legacy_text_are_counted_as_generated() -> None:
    tool = event(
        {
            "choices": [
                {"delta": {"tool_calls": [{"function": {"name": "f", "arguments": '{"x":1}'}}]}}
            ]
        }
    )
    legacy = event({"choices": [{"text": "done"}]})
    tap = new_tap(drop_usage_chunk=True)
    relay(tap, [tool, legacy])
    assert tap.generated_text == 'f{"x":1}done'


def test_an_event_without_separator_beyond_the_bound_is_refused() -> None:
    tap = new_tap(drop_usage_chunk=True)
    with pytest.raises(ValueError, match="larger than"):
        tap.feed(b"data: " + b"x" * MAX_PENDING_BYTES)


def test_an_unterminated_last_event_is_flushed() -> None:
    tap = new_tap(drop_usage_chunk=True)
    tail = chunk("end").rstrip(b"\n")
    assert tap.feed(tail) == b""
    assert asyncio.run(tap.flush()) == tail
    assert tap.generated_text == "end"


RECEIPT = Receipt("req_1", charged_units=31_250, remaining_units=99_968_750)
COMMENT = b": spu_charged=0.03125 spu_remaining=99.96875\n\n"


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=20))
def test_the_end_waits_for_the_receipt_which_goes_before_done_and_into_the_usage(
    cuts: list[int],
) -> None:
    asked, not_asked = new_tap(drop_usage_chunk=False), new_tap(drop_usage_chunk=True)
    bounds = [0, *sorted(cuts), len(STREAM)]
    pieces = [STREAM[a:b] for a, b in pairwise(bounds)]

    sent_before = b"".join(asked.feed(piece) for piece in pieces) + asyncio.run(asked.flush())
    not_asked_before = b"".join(not_asked.feed(piece) for piece in pieces) + asyncio.run(
        not_asked.flush()
    )

    assert sent_before == not_asked_before == b"".join(CONTENT)
    usage = {**USAGE, "spu_charged": "0.03125", "spu_remaining": "99.96875"}
    assert (
        asyncio.run(asked.close(RECEIPT)) == event({"choices": [], "usage": usage}) + COMMENT + DONE
    )
    assert asyncio.run(not_asked.close(RECEIPT)) == COMMENT + DONE


def test_a_stream_without_done_ends_with_the_receipt_and_continuous_usage_is_not_held() -> None:
    tap = new_tap(drop_usage_chunk=False)
    with_usage = chunk("Hi", usage=USAGE)

    assert tap.feed(with_usage) == with_usage
    assert asyncio.run(tap.close(RECEIPT)) == COMMENT
    assert asyncio.run(new_tap(drop_usage_chunk=True).close(None)) == b""


def owed(tap: OpenAIStreamTap, ending: Ending = Ending.CLIENT_DISCONNECTED) -> TokenCounts | None:
    return asyncio.run(tap.owed(ending))


@settings(deadline=None)  # the first example may load the encoding: a quarter of a second
@given(st.lists(st.integers(min_value=0), max_size=12))
def test_a_stream_cut_before_its_usage_is_charged_for_all_its_text_however_split(
    cuts: list[int],
) -> None:
    """Content chunks pass unparsed; what was generated is still read, in order, when the
    counts never come."""
    tap = new_tap(drop_usage_chunk=True)
    relay(tap, split(b"".join(CONTENT), cuts))
    assert owed(tap) == TokenCounts(
        input_tokens=5, output_tokens=count_text_tokens("Hello wörld", "gpt-4o-mini")
    )


def test_null_usage_on_every_chunk_is_passed_and_the_last_chunk_reports() -> None:
    """OpenAI's shape with ``include_usage``: ``"usage": null`` on each content chunk, also
    written with spaces, and text that says "usage" is only text."""
    content = [
        chunk("usage", usage=None),
        event({"choices": [{"delta": {"content": '"usage": 1'}}], "usage": None}).replace(
            b'"usage":null', b'"usage" : null'
        ),
    ]
    tap = new_tap(drop_usage_chunk=True)
    assert relay(tap, [*content, USAGE_CHUNK, DONE]) == b"".join([*content, DONE])
    assert owed(tap, Ending.OK) == REPORTED
    cut = new_tap(drop_usage_chunk=True)
    relay(cut, content)
    assert cut.reported is None
    assert cut.generated_text == 'usage"usage": 1'


def test_usage_nested_beside_a_null_one_is_still_read() -> None:
    both = event({"choices": [{"delta": {"content": "x", "usage": None}}], "usage": USAGE})
    tap = new_tap(drop_usage_chunk=True)
    relay(tap, [both])
    assert tap.reported == REPORTED


def test_a_long_stream_keeps_its_text_not_its_events() -> None:
    pieces = [chunk(f"w{index} ") for index in range(2 * UNREAD_LIMIT_BYTES // len(chunk("w0 ")))]
    tap = new_tap(drop_usage_chunk=True)
    relay(tap, pieces)
    assert tap._unread_bytes <= UNREAD_LIMIT_BYTES
    assert tap.generated_text == "".join(f"w{index} " for index in range(len(pieces)))
    assert tap.content_events == len(pieces)


def test_an_unreported_stream_that_streamed_only_its_role_still_owes_its_prompt() -> None:
    """A chunk with a choice counts as content, read or not: the call is charged."""
    tap = new_tap(drop_usage_chunk=True)
    relay(tap, [event({"choices": [{"delta": {"role": "assistant"}}]})])
    assert owed(tap) == TokenCounts(input_tokens=5, output_tokens=0)
