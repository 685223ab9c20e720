"""The demo model behaves like a provider where metering and the SDKs can tell.

Token counts are worked out here with tiktoken's encoding directly; the
encoding is the one the gateway estimates the demo's model name with
(``cl100k_base``, as for every name tiktoken does not know).
"""

import base64
import struct
from typing import Any

import httpx
import orjson
import pytest

from pricing import count_chat_prompt_tokens
from pricing.tokens import get_encoding
from proxy.upstream.demo import DEMO_REPLY, DemoTransport

MODEL = "spu-demo"
ENCODING = "cl100k_base"
PROMPT = "Tell me about foxes."
FULL_REPLY = DEMO_REPLY + PROMPT
MESSAGES = [{"role": "user", "content": PROMPT}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def tokens_of(text: str) -> int:
    return len(get_encoding(ENCODING).encode_ordinary(text))


async def post(path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(transport=DemoTransport(), base_url="http://demo") as client:
        response = await client.post(path, json=body)
        await response.aread()
        return response


def events(response: httpx.Response) -> list[Any]:
    """The payloads of a server-sent-event body, ``[DONE]`` as the string."""
    payloads: list[Any] = []
    for block in response.content.split(b"\n\n"):
        if not block:
            continue
        assert block.startswith(b"data: "), block
        data = block.removeprefix(b"data: ")
        payloads.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return payloads


async def test_a_whole_reply_stops_and_counts_its_tokens_and_the_prompt_with_tools() -> None:
    response = await post(
        "/chat/completions", {"model": MODEL, "messages": MESSAGES, "tools": TOOLS}
    )
    body = response.json()
    [choice] = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": FULL_REPLY, "refusal": None}
    assert (choice["logprobs"], choice["finish_reason"]) == (None, "stop")
    prompt_tokens = count_chat_prompt_tokens(MESSAGES, MODEL, TOOLS)
    assert prompt_tokens > count_chat_prompt_tokens(MESSAGES, MODEL)
    assert body["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": tokens_of(FULL_REPLY),
        "total_tokens": prompt_tokens + tokens_of(FULL_REPLY),
    }


@pytest.mark.parametrize("max_tokens", [1, 7, 30])
async def test_a_reply_is_cut_at_max_tokens_and_says_length(max_tokens: int) -> None:
    assert tokens_of(FULL_REPLY) > 30
    response = await post(
        "/chat/completions",
        {"model": MODEL, "messages": MESSAGES, "max_completion_tokens": max_tokens},
    )
    body = response.json()
    [choice] = body["choices"]
    text = choice["message"]["content"]
    assert choice["finish_reason"] == "length"
    assert FULL_REPLY.startswith(text)
    assert tokens_of(text) == max_tokens == body["usage"]["completion_tokens"]


async def test_a_stream_sends_what_the_plain_answer_holds_then_usage_then_done() -> None:
    request = {"model": MODEL, "messages": MESSAGES, "max_tokens": 20}
    plain = (await post("/chat/completions", request)).json()
    streamed = events(
        await post(
            "/chat/completions",
            {**request, "stream": True, "stream_options": {"include_usage": True}},
        )
    )
    assert streamed[-1] == "[DONE]"
    *chunks, usage_chunk, _ = streamed
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == plain["usage"]
    first, *content, last = chunks
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert len(content) > 1
    assert (
        "".join(chunk["choices"][0]["delta"]["content"] for chunk in content)
        == (plain["choices"][0]["message"]["content"])
    )
    assert (last["choices"][0]["delta"], last["choices"][0]["finish_reason"]) == ({}, "length")
    assert all(chunk["choices"][0]["logprobs"] is None for chunk in chunks)
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)


async def test_a_stream_has_no_usage_chunk_unless_asked() -> None:
    streamed = events(
        await post("/chat/completions", {"model": MODEL, "messages": MESSAGES, "stream": True})
    )
    assert all("usage" not in chunk for chunk in streamed[:-1])


async def test_n_choices_are_each_generated_and_counted() -> None:
    body = (await post("/chat/completions", {"model": MODEL, "messages": MESSAGES, "n": 3})).json()
    assert [choice["index"] for choice in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 3 * tokens_of(FULL_REPLY)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", 0), ("max_tokens", "10"), ("max_completion_tokens", True), ("n", 129)],
)
async def test_out_of_range_bounds_are_a_400_naming_the_parameter(
    field: str, value: object
) -> None:
    response = await post("/chat/completions", {"model": MODEL, "messages": MESSAGES, field: value})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == field


async def test_embeddings_honour_base64_as_the_openai_sdk_asks_for_it() -> None:
    body = (
        await post(
            "/embeddings",
            {"model": MODEL, "input": ["a fox", "a dog"], "encoding_format": "base64"},
        )
    ).json()
    vectors = [struct.unpack("<3f", base64.b64decode(item["embedding"])) for item in body["data"]]
    assert vectors == [(0.0, 0.5, 1.0), (0.0, 0.5, 1.0)]
    assert body["usage"]["prompt_tokens"] == tokens_of("a fox") + tokens_of("a dog")


@pytest.mark.parametrize(
    ("raw", "vectors", "prompt_tokens"), [([1, 2, 3], 1, 3), ([[1, 2], [3, 4, 5]], 2, 5)]
)
async def test_embeddings_take_token_arrays(
    raw: list[Any], vectors: int, prompt_tokens: int
) -> None:
    body = (await post("/embeddings", {"model": MODEL, "input": raw})).json()
    assert [item["embedding"] for item in body["data"]] == [[0.0, 0.5, 1.0]] * vectors
    assert body["usage"] == {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}


@pytest.mark.parametrize("raw", [[], [1, "a"], {"text": "a"}, 5, [True]])
async def test_embeddings_refuse_other_inputs_with_a_400(raw: object) -> None:
    response = await post("/embeddings", {"model": MODEL, "input": raw})
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"


async def test_legacy_completions_stream_real_events_cut_at_max_tokens() -> None:
    request = {"model": MODEL, "prompt": PROMPT, "max_tokens": 12}
    plain = (await post("/completions", request)).json()
    [choice] = plain["choices"]
    assert choice["finish_reason"] == "length" and tokens_of(choice["text"]) == 12
    response = await post(
        "/completions", {**request, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert response.headers["content-type"] == "text/event-stream"
    *chunks, usage_chunk, done = events(response)
    assert done == "[DONE]" and usage_chunk["usage"] == plain["usage"]
    assert len(chunks) > 2
    assert "".join(chunk["choices"][0]["text"] for chunk in chunks) == choice["text"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all(chunk["object"] == "text_completion" for chunk in chunks)


async def test_legacy_completions_default_to_16_tokens_per_prompt() -> None:
    body = (await post("/completions", {"model": MODEL, "prompt": [PROMPT, "Hi"]})).json()
    assert [choice["index"] for choice in body["choices"]] == [0, 1]
    assert body["usage"]["completion_tokens"] == 32
    assert body["usage"]["prompt_tokens"] == tokens_of(PROMPT) + tokens_of("Hi")


async def test_a_cut_inside_a_character_never_splits_it_across_pieces() -> None:
    prompt = "naïve café 東京 " * 4
    request = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
    whole = (await post("/chat/completions", request)).json()["choices"][0]["message"]["content"]
    assert whole == DEMO_REPLY + prompt.strip()
    streamed = events(await post("/chat/completions", {**request, "stream": True}))
    pieces = [chunk["choices"][0]["delta"].get("content", "") for chunk in streamed[:-1]]
    assert "".join(pieces) == whole and all("\ufffd" not in piece for piece in pieces)


async def test_the_echo_is_the_last_text_the_user_sent_not_the_reminders_before_it() -> None:
    content = [
        {"type": "text", "text": "<system-reminder>context</system-reminder>"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "say hello"},
    ]
    request = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    body = (await post("/chat/completions", request)).json()
    assert body["choices"][0]["message"]["content"] == DEMO_REPLY + "say hello"
