"""The built-in demo model: an httpx transport that answers in OpenAI's wire format locally.

It needs no key and no network, and it behaves like a provider where metering
can tell: it generates tokens (its reply, cut at ``max_tokens``, with
``finish_reason: "length"`` when cut), counts them with the tokenizer of the
model it is asked for (the one the gateway estimates that model with), counts
tool definitions as prompt, and streams real server-sent events word by word,
so the README's run command shows metering end to end.
"""

import asyncio
import base64
import codecs
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import tiktoken

from pricing import count_chat_prompt_tokens, count_text_tokens
from pricing.tokens import encoding_for_model
from proxy.errors import ApiError, bad_request, error_body
from proxy.request_body import positive_int

DEMO_REPLY = (
    "Hello from the SPU Gateway demo model. This answer was generated locally, metered, "
    "priced with a markup and debited from your organization's credits. You said: "
)
ECHOED_PROMPT_WORDS = 40
EMBEDDING = (0.0, 0.5, 1.0)
MAX_CHOICES = 128
"""OpenAI's own bound on ``n``."""
LEGACY_COMPLETION_MAX_TOKENS = 16
"""What ``/v1/completions`` generates when the request sets no ``max_tokens``, as at OpenAI."""

_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "text/event-stream"}


@dataclass(frozen=True, slots=True)
class Generation:
    """One choice's reply: the pieces it streams as, and the tokens they are."""

    pieces: list[str]
    tokens: int
    cut: bool
    """True when ``max_tokens`` stopped it before the reply was whole."""

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def finish_reason(self) -> str:
        return "length" if self.cut else "stop"


def generate(prompt_text: str, max_tokens: int | None, model: str) -> Generation:
    """The reply to ``prompt_text``: at most ``max_tokens`` tokens in ``model``'s encoding."""
    encoding = encoding_for_model(model)
    reply = DEMO_REPLY + " ".join(prompt_text.split()[:ECHOED_PROMPT_WORDS])
    tokens = encoding.encode_ordinary(reply)
    kept = tokens if max_tokens is None else tokens[:max_tokens]
    return Generation(_word_pieces(encoding, kept), len(kept), len(kept) < len(tokens))


def _word_pieces(encoding: tiktoken.Encoding, tokens: Sequence[int]) -> list[str]:
    """Tokens grouped into words (a piece starts at a token that starts with a space).

    Bytes are decoded incrementally, so a character split across two tokens is
    sent whole in the later piece, never as a replacement character.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    current: list[str] = []
    for token in tokens:
        raw = encoding.decode_single_token_bytes(token)
        if raw.startswith(b" ") and current:
            pieces.append("".join(current))
            current = []
        current.append(decoder.decode(raw))
    current.append(decoder.decode(b"", final=True))
    if any(current):
        pieces.append("".join(current))
    return pieces


def _choices(body: dict[str, Any]) -> int:
    n = positive_int(body, "n") or 1
    if n > MAX_CHOICES:
        raise bad_request(f"'n' must be at most {MAX_CHOICES}.", param="n")
    return n


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _last_user_text(messages: list[Any]) -> str:
    """What the user said last: the last text of the last user message.

    Agents put reminders and context in earlier parts of that message; the
    prompt they were given comes last.
    """
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [
                    part["text"]
                    for part in content
                    if isinstance(part, dict) and isinstance(part.get("text"), str)
                ]
                return texts[-1] if texts else ""
    return ""


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _json(payload: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps(payload), headers=_JSON)


@dataclass(frozen=True, slots=True)
class _Call:
    """What every endpoint's answer shares: its id, time, model and stream settings."""

    id: str
    created: int
    model: str
    delay_s: float


def _stream(
    call: _Call,
    generations: list[Generation],
    chunk: Callable[[int, str | None, str | None], dict[str, Any]],
    *,
    opening: list[dict[str, Any]],
    usage_chunk: dict[str, Any] | None,
) -> httpx.Response:
    """``opening``, one event per piece and choice (``chunk(index, piece, finish_reason)``),
    each choice's finish, the usage chunk (when asked for), then ``[DONE]``."""

    async def events() -> AsyncIterator[bytes]:
        for payload in opening:
            yield _sse(payload)
        longest = max(len(generation.pieces) for generation in generations)
        for position in range(longest):
            if call.delay_s:
                await asyncio.sleep(call.delay_s)
            for index, generation in enumerate(generations):
                if position < len(generation.pieces):
                    yield _sse(chunk(index, generation.pieces[position], None))
        for index, generation in enumerate(generations):
            yield _sse(chunk(index, None, generation.finish_reason))
        if usage_chunk is not None:
            yield _sse(usage_chunk)
        yield b"data: [DONE]\n\n"

    return httpx.Response(200, content=events(), headers=_SSE)


def _chat(body: dict[str, Any], call: _Call) -> httpx.Response:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", param="messages")
    tools = body.get("tools")
    prompt_tokens = count_chat_prompt_tokens(
        messages, call.model, tools if isinstance(tools, list) else None
    )
    generation = generate(
        _last_user_text(messages),
        positive_int(body, "max_completion_tokens", "max_tokens"),
        call.model,
    )
    generations = [generation] * _choices(body)
    usage = _usage(prompt_tokens, generation.tokens * len(generations))
    head = {"id": call.id, "created": call.created, "model": call.model}
    if body.get("stream") is not True:
        choices = [
            {
                "index": index,
                "message": {"role": "assistant", "content": generation.text, "refusal": None},
                "logprobs": None,
                "finish_reason": generation.finish_reason,
            }
            for index in range(len(generations))
        ]
        return _json({**head, "object": "chat.completion", "choices": choices, "usage": usage})
    chunk_head = {**head, "object": "chat.completion.chunk"}

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**chunk_head, "choices": [choice]}

    role = {"role": "assistant", "content": "", "refusal": None}
    usage_chunk = {**chunk_head, "choices": [], "usage": usage} if _include_usage(body) else None
    return _stream(
        call,
        generations,
        lambda index, piece, finish: chunk(
            index, {} if piece is None else {"content": piece}, finish
        ),
        opening=[chunk(index, role, None) for index in range(len(generations))],
        usage_chunk=usage_chunk,
    )


def _prompt_texts(prompt: object) -> list[str | list[int]]:
    """A prompt as a list of prompts: strings, or token arrays (which are echoed as nothing)."""
    if isinstance(prompt, str):
        return [prompt]
    if _is_token_array(prompt):
        return [prompt]  # type: ignore[list-item]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(item, str) or _is_token_array(item) for item in prompt):
            return prompt
    raise bad_request("'prompt' must be a string, strings, or token arrays.", param="prompt")


def _is_token_array(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    )


def _prompt_tokens(items: Sequence[str | list[int]], model: str) -> int:
    return sum(
        count_text_tokens(item, model) if isinstance(item, str) else len(item) for item in items
    )


def _completions(body: dict[str, Any], call: _Call) -> httpx.Response:
    prompts = _prompt_texts(body.get("prompt"))
    max_tokens = positive_int(body, "max_tokens") or LEGACY_COMPLETION_MAX_TOKENS
    n = _choices(body)
    generations = [
        generate(prompt if isinstance(prompt, str) else "", max_tokens, call.model)
        for prompt in prompts
        for _ in range(n)
    ]
    usage = _usage(
        _prompt_tokens(prompts, call.model), sum(generation.tokens for generation in generations)
    )
    head = {
        "id": call.id,
        "object": "text_completion",
        "created": call.created,
        "model": call.model,
    }
    if body.get("stream") is not True:
        choices = [
            {
                "index": index,
                "text": generation.text,
                "logprobs": None,
                "finish_reason": generation.finish_reason,
            }
            for index, generation in enumerate(generations)
        ]
        return _json({**head, "choices": choices, "usage": usage})

    def chunk(index: int, piece: str | None, finish_reason: str | None) -> dict[str, Any]:
        choice = {"index": index, "text": piece or "", "logprobs": None}
        return {**head, "choices": [{**choice, "finish_reason": finish_reason}]}

    usage_chunk = {**head, "choices": [], "usage": usage} if _include_usage(body) else None
    return _stream(call, generations, chunk, opening=[], usage_chunk=usage_chunk)


def _embedding(encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        # As OpenAI sends it: the float32 vector's little-endian bytes, base64-encoded.
        return base64.b64encode(struct.pack(f"<{len(EMBEDDING)}f", *EMBEDDING)).decode()
    return list(EMBEDDING)


def _embedding_inputs(raw: object) -> list[str | list[int]]:
    if isinstance(raw, str) or _is_token_array(raw):
        return [raw]  # type: ignore[list-item]
    if isinstance(raw, list) and raw:
        if all(isinstance(item, str) or _is_token_array(item) for item in raw):
            return raw
    raise bad_request(
        "'input' must be a string, an array of strings, or token arrays.", param="input"
    )


def _embeddings(body: dict[str, Any], call: _Call) -> httpx.Response:
    inputs = _embedding_inputs(body.get("input"))
    encoding_format = body.get("encoding_format", "float")
    if encoding_format not in ("float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    prompt_tokens = _prompt_tokens(inputs, call.model)
    data = [
        {"object": "embedding", "index": index, "embedding": _embedding(encoding_format)}
        for index in range(len(inputs))
    ]
    return _json(
        {
            "object": "list",
            "data": data,
            "model": call.model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )


_Handler = Callable[[dict[str, Any], _Call], httpx.Response]
_HANDLERS: dict[str, tuple[str, _Handler]] = {
    "/chat/completions": ("chatcmpl-demo", _chat),
    "/completions": ("cmpl-demo", _completions),
    "/embeddings": ("embd-demo", _embeddings),
}


def _error(error: ApiError, path: str) -> httpx.Response:
    """The demo's refusal, in OpenAI's error shape as a provider sends it."""
    return httpx.Response(
        error.status, content=orjson.dumps(error_body(error, path)), headers=_JSON
    )


class DemoTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, stream_delay_s: float = 0.0) -> None:
        self._stream_delay_s = stream_delay_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        route = _HANDLERS.get(path)
        if route is None:
            return _error(ApiError(404, "not found", error_type="not_found_error"), path)
        try:
            body = orjson.loads(await request.aread())
        except orjson.JSONDecodeError:
            return _error(bad_request("The request body is not valid JSON."), path)
        if not isinstance(body, dict):
            return _error(bad_request("The request body must be a JSON object."), path)
        id_prefix, handler = route
        model = body.get("model")
        call = _Call(
            id=f"{id_prefix}{uuid.uuid4().hex[:20]}",
            created=int(time.time()),
            model=model if isinstance(model, str) and model else "spu-demo",
            delay_s=self._stream_delay_s,
        )
        try:
            return handler(body, call)
        except ApiError as error:
            return _error(error, path)
