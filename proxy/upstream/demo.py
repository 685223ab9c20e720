"""The built-in demo model: an httpx transport that answers in OpenAI's wire format locally.

It needs no key and no network, reports usage the way a provider does, and
streams word by word, so the README's run command shows metering end to end.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from pricing import count_chat_prompt_tokens, count_text_tokens

DEMO_REPLY = (
    "Hello from the SPU Gateway demo model. This answer was generated locally, metered, "
    "priced with a markup and debited from your organization's credits. You said: "
)
DEMO_ENCODING_MODEL = "gpt-4o-mini"


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
    return ""


def _reply_words(prompt_text: str, max_tokens: int) -> list[str]:
    words = (DEMO_REPLY + " ".join(prompt_text.split()[:40])).split(" ")
    return [word + " " for word in words[: max(1, min(max_tokens, len(words)))]]


def _usage(prompt_tokens: int, completion_text: str) -> dict[str, int]:
    completion_tokens = count_text_tokens(completion_text, DEMO_ENCODING_MODEL)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _chat(body: dict[str, Any], delay_s: float) -> httpx.Response:
    messages = body.get("messages") or []
    max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 256)
    words = _reply_words(_last_user_text(messages), max_tokens)
    prompt_tokens = count_chat_prompt_tokens(messages, DEMO_ENCODING_MODEL)
    completion_id = f"chatcmpl-demo{uuid.uuid4().hex[:20]}"
    created = int(time.time())
    model = body.get("model", "spu-demo")
    text = "".join(words)
    if not body.get("stream"):
        payload = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(prompt_tokens, text),
        }
        return httpx.Response(200, content=orjson.dumps(payload), headers=_JSON)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    async def events() -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            event: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + orjson.dumps(event) + b"\n\n"

        yield chunk({"role": "assistant", "content": ""}, None)
        for word in words:
            if delay_s:
                await asyncio.sleep(delay_s)
            yield chunk({"content": word}, None)
        yield chunk({}, "stop")
        if include_usage:
            usage_event = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": _usage(prompt_tokens, text),
            }
            yield b"data: " + orjson.dumps(usage_event) + b"\n\n"
        yield b"data: [DONE]\n\n"

    return httpx.Response(200, content=events(), headers={"content-type": "text/event-stream"})


def _embeddings(body: dict[str, Any], delay_s: float) -> httpx.Response:
    raw = body.get("input", "")
    inputs = raw if isinstance(raw, list) else [raw]
    prompt_tokens = sum(
        count_text_tokens(item, DEMO_ENCODING_MODEL) if isinstance(item, str) else len(item)
        for item in inputs
    )
    data = [
        {"object": "embedding", "index": index, "embedding": [0.0, 0.5, 1.0]}
        for index in range(len(inputs))
    ]
    payload = {
        "object": "list",
        "data": data,
        "model": body.get("model", "spu-demo"),
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
    return httpx.Response(200, content=orjson.dumps(payload), headers=_JSON)


def _completions(body: dict[str, Any], delay_s: float) -> httpx.Response:
    prompt = body.get("prompt", "")
    prompt_text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt))
    words = _reply_words(prompt_text, int(body.get("max_tokens") or 16))
    text = "".join(words)
    payload = {
        "id": f"cmpl-demo{uuid.uuid4().hex[:20]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.get("model", "spu-demo"),
        "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
        "usage": _usage(count_text_tokens(prompt_text, DEMO_ENCODING_MODEL), text),
    }
    return httpx.Response(200, content=orjson.dumps(payload), headers=_JSON)


_JSON = {"content-type": "application/json"}
_HANDLERS = {
    "/chat/completions": _chat,
    "/completions": _completions,
    "/embeddings": _embeddings,
}


class DemoTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, stream_delay_s: float = 0.0) -> None:
        self._stream_delay_s = stream_delay_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        handler = _HANDLERS.get(request.url.path)
        if handler is None:
            error = {"error": {"message": "not found", "type": "invalid_request_error"}}
            return httpx.Response(404, content=orjson.dumps(error), headers=_JSON)
        return handler(orjson.loads(await request.aread()), self._stream_delay_s)
