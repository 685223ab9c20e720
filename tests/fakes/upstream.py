"""A fake LLM provider: OpenAI's and Anthropic's wire formats over real HTTP, steered by knobs.

It is a bare ASGI app rather than a Starlette one because the proxy benchmark
runs it beside the gateway on the same two cores, where every microsecond the
fake spends is taken from the gateway being measured.

Endpoints (mount it so the gateway's ``api_base`` is ``<url>/v1``):

- ``POST /v1/chat/completions`` — plain, or streamed (``"stream": true``) as
  OpenAI does it: a role chunk, one chunk per reply piece, a finish chunk, then,
  only when the request set ``stream_options.include_usage``, a usage chunk with
  empty ``choices``, then ``data: [DONE]``.
- ``POST /v1/completions`` — legacy text completion, plain or streamed as OpenAI
  streams it: one chunk per piece, a finish chunk, the usage chunk when asked
  for (``stream_options.include_usage``), then ``data: [DONE]``.
- ``POST /v1/embeddings`` — one 3-float vector per input.
- ``GET /healthz`` — 200 once serving (for scripts that start it as a process).
- ``POST /v1/messages`` — Anthropic Messages, plain or streamed: ``message_start``
  (input usage with both cache fields), ``content_block_start``, a ``ping``, one
  ``content_block_delta`` per piece, ``content_block_stop``, ``message_delta``
  (output usage), ``message_stop``.
- ``POST /v1/messages/count_tokens`` — ``{"input_tokens": prompt_tokens}``.
- ``POST /v1/responses`` — OpenAI's Responses API, plain or streamed as OpenAI
  streams it: ``response.created``, ``response.in_progress``, the message item
  (``output_item.added``, ``content_part.added``, one ``output_text.delta`` per
  piece, the ``…done`` events), then, with ``tool_use``, a ``function_call``
  item whose arguments come in three ``function_call_arguments.delta`` pieces,
  then ``response.completed`` (``response.incomplete`` when
  ``max_output_tokens`` cut the reply). Usage counts ``prompt_tokens`` as
  input, ``cache_read_input_tokens`` of them as cached, and the pieces plus
  ``reasoning_tokens`` as output. A response not sent with ``store: false`` is
  kept, with its input items, for:
- ``GET /v1/responses/{id}``, ``DELETE /v1/responses/{id}`` and
  ``GET /v1/responses/{id}/input_items`` — as OpenAI answers them; an id it
  does not hold is a 404.

Knobs (``FakeUpstream.knobs``, a mutable ``Knobs``; ``reset()`` restores defaults):

- ``reply``: the answer; split into pieces at word boundaries (each piece keeps
  its trailing space), one streamed chunk per piece. ``max_tokens`` (or
  ``max_completion_tokens``) truncates it to that many pieces.
- ``prompt_tokens``: input tokens reported in usage.
- ``completion_tokens``: output tokens reported; ``None`` reports the number of
  pieces sent.
- ``cache_creation_input_tokens`` / ``cache_read_input_tokens``: Anthropic usage
  (the second is also the Responses ``cached_tokens``).
- ``reasoning_tokens``: Responses ``output_tokens_details.reasoning_tokens``, added
  to its output count as OpenAI does.
- ``tool_use``: ``(name, input)`` makes Anthropic replies end with that ``tool_use``
  block (streamed as ``input_json_delta`` pieces) and ``stop_reason`` ``tool_use``,
  and Responses replies with that ``function_call`` item.
- ``report_usage``: ``False`` leaves usage out (OpenAI: no ``usage`` field and no
  usage chunk; Anthropic: no ``usage`` in ``message_delta``).
- ``chunk_delay_s``: pause before each streamed piece.
- ``headers_delay_s``: pause before the response starts (to trigger timeouts).
- ``stall_after_pieces`` / ``stall_s``: after that many streamed pieces, pause
  ``stall_s`` once (a provider hanging mid-stream).
- ``fail_status``: answer every request with this status and an error body in
  the endpoint's own shape (``fail_message`` as its message).

What it saw: ``requests`` (method, path, lower-cased headers and JSON body of the
most recent ``MAX_RECORDED`` requests), ``stored_responses`` (by id),
``streams_finished`` and ``streams_cut`` (streams that ran to the end, and streams
whose client went away first — a provider stops generating when its connection
drops, and so does this fake).
"""

import asyncio
import contextlib
import itertools
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_RECORDED = 1000
DEFAULT_REPLY = "The quick brown fox jumps over the lazy dog while the metering proxy counts."
_PIECE = re.compile(r"\S+\s*")
_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


@dataclass
class Knobs:
    reply: str = DEFAULT_REPLY
    prompt_tokens: int = 17
    completion_tokens: int | None = None
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    reasoning_tokens: int = 0
    tool_use: tuple[str, dict[str, Any]] | None = None
    report_usage: bool = True
    chunk_delay_s: float = 0.0
    headers_delay_s: float = 0.0
    stall_after_pieces: int | None = None
    stall_s: float = 0.0
    fail_status: int | None = None
    fail_message: str = "The fake upstream failed on purpose."


@dataclass(frozen=True, slots=True)
class SeenRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]


def reply_pieces(reply: str, max_pieces: int | None = None) -> list[str]:
    """The pieces a reply streams as; tests use it to know what a call will produce."""
    pieces = _PIECE.findall(reply)
    return pieces[:max_pieces] if max_pieces else pieces


@dataclass
class FakeUpstream:
    knobs: Knobs = field(default_factory=Knobs)
    requests: deque[SeenRequest] = field(default_factory=lambda: deque(maxlen=MAX_RECORDED))
    stored_responses: dict[str, StoredResponse] = field(default_factory=dict)
    streams_finished: int = 0
    streams_cut: int = 0

    def reset(self) -> None:
        self.knobs = Knobs()
        self.requests.clear()
        self.stored_responses.clear()
        self.streams_finished = 0
        self.streams_cut = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/healthz":
            await _send_json(send, 200, {"status": "ok"})
            return
        raw = await _read_body(receive)
        body = orjson.loads(raw) if raw else {}
        method: str = scope["method"]
        self.requests.append(
            SeenRequest(
                path=path,
                headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
                body=body,
                method=method,
            )
        )
        knobs = self.knobs
        if knobs.headers_delay_s:
            await asyncio.sleep(knobs.headers_delay_s)
        if path.startswith(_STORED_PREFIX) and method in ("GET", "DELETE"):
            await self._stored(method, path.removeprefix(_STORED_PREFIX), send)
            return
        handler = _HANDLERS.get(path)
        if handler is None:
            await _send_json(send, 404, _openai_error("no such endpoint", "not_found_error"))
            return
        if knobs.fail_status is not None:
            error = (
                _anthropic_error(knobs.fail_message)
                if path.startswith("/v1/messages")
                else _openai_error(knobs.fail_message, "server_error")
            )
            await _send_json(send, knobs.fail_status, error)
            return
        await handler(self, knobs, body, receive, send)

    async def _stream(
        self, events: list[tuple[bytes, bool]], knobs: Knobs, receive: Receive, send: Send
    ) -> None:
        """Send ``(event, is_content)`` pairs, pausing before each content event.

        Stops when the client goes away, as a provider does.
        """
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        pieces_sent = 0
        try:
            for event, is_content in events:
                if is_content:
                    if knobs.chunk_delay_s:
                        await asyncio.sleep(knobs.chunk_delay_s)
                    if pieces_sent == knobs.stall_after_pieces:
                        await asyncio.sleep(knobs.stall_s)
                    pieces_sent += 1
                if gone.is_set():
                    self.streams_cut += 1
                    return
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self.streams_finished += 1
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _stored(self, method: str, rest: str, send: Send) -> None:
        """A kept response, its deletion, or its input items; 404 for an id not kept."""
        response_id, _, tail = rest.partition("/")
        stored = self.stored_responses.get(response_id)
        if stored is None or tail not in ("", "input_items") or (tail and method != "GET"):
            message = f"No response found with id '{response_id}'."
            await _send_json(send, 404, _openai_error(message, "invalid_request_error"))
        elif tail == "input_items":
            items = stored.input_items
            page = {"object": "list", "data": items, "has_more": False}
            page |= {"first_id": items[0]["id"], "last_id": items[-1]["id"]} if items else {}
            await _send_json(send, 200, page)
        elif method == "DELETE":
            del self.stored_responses[response_id]
            await _send_json(send, 200, {"id": response_id, "object": "response", "deleted": True})
        else:
            await _send_json(send, 200, stored.response)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, payload: Any) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON_HEADERS})
    await send({"type": "http.response.body", "body": orjson.dumps(payload)})


def _openai_error(message: str, error_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def _anthropic_error(message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "api_error", "message": message}}


def _max_pieces(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return value if isinstance(value, int) and value > 0 else None


def _openai_usage(knobs: Knobs, pieces: list[str]) -> dict[str, int]:
    completion = len(pieces) if knobs.completion_tokens is None else knobs.completion_tokens
    return {
        "prompt_tokens": knobs.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": knobs.prompt_tokens + completion,
    }


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _chat(
    fake: FakeUpstream, knobs: Knobs, body: dict[str, Any], receive: Receive, send: Send
) -> None:
    pieces = reply_pieces(knobs.reply, _max_pieces(body))
    finish = "length" if len(pieces) < len(reply_pieces(knobs.reply)) else "stop"
    head = {
        "id": f"chatcmpl-fake{uuid.uuid4().hex[:16]}",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "system_fingerprint": "fp_fake",
    }
    if not body.get("stream"):
        payload: dict[str, Any] = {
            **head,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces), "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
        }
        if knobs.report_usage:
            payload["usage"] = _openai_usage(knobs, pieces)
        await _send_json(send, 200, payload)
        return
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunk_head = {**head, "object": "chat.completion.chunk"}
    # With include_usage OpenAI sends "usage": null on every chunk but the last.
    nulls = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _sse({**chunk_head, "choices": [choice], **nulls})

    events = [(chunk({"role": "assistant", "content": "", "refusal": None}, None), False)]
    events += [(chunk({"content": piece}, None), True) for piece in pieces]
    events.append((chunk({}, finish), False))
    if include_usage and knobs.report_usage:
        usage_chunk = {**chunk_head, "choices": [], "usage": _openai_usage(knobs, pieces)}
        events.append((_sse(usage_chunk), False))
    events.append((b"data: [DONE]\n\n", False))
    await fake._stream(events, knobs, receive, send)


async def _completions(
    fake: FakeUpstream, knobs: Knobs, body: dict[str, Any], receive: Receive, send: Send
) -> None:
    pieces = reply_pieces(knobs.reply, _max_pieces(body))
    finish = "length" if len(pieces) < len(reply_pieces(knobs.reply)) else "stop"
    head = {
        "id": f"cmpl-fake{uuid.uuid4().hex[:16]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
    }
    if not body.get("stream"):
        payload: dict[str, Any] = {
            **head,
            "choices": [
                {"index": 0, "text": "".join(pieces), "logprobs": None, "finish_reason": finish}
            ],
        }
        if knobs.report_usage:
            payload["usage"] = _openai_usage(knobs, pieces)
        await _send_json(send, 200, payload)
        return

    def chunk(text: str, finish_reason: str | None) -> bytes:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return _sse({**head, "choices": [choice]})

    events = [(chunk(piece, None), True) for piece in pieces]
    events.append((chunk("", finish), False))
    if (body.get("stream_options") or {}).get("include_usage") and knobs.report_usage:
        usage_chunk = {**head, "choices": [], "usage": _openai_usage(knobs, pieces)}
        events.append((_sse(usage_chunk), False))
    events.append((b"data: [DONE]\n\n", False))
    await fake._stream(events, knobs, receive, send)


async def _embeddings(
    fake: FakeUpstream, knobs: Knobs, body: dict[str, Any], receive: Receive, send: Send
) -> None:
    raw = body.get("input", "")
    count = len(raw) if isinstance(raw, list) and raw and not isinstance(raw[0], int) else 1
    payload: dict[str, Any] = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": [0.1, 0.2, 0.3]}
            for index in range(count)
        ],
        "model": body.get("model", "fake"),
    }
    if knobs.report_usage:
        payload["usage"] = {
            "prompt_tokens": knobs.prompt_tokens,
            "total_tokens": knobs.prompt_tokens,
        }
    await _send_json(send, 200, payload)


def _anthropic_input_usage(knobs: Knobs) -> dict[str, int]:
    return {
        "input_tokens": knobs.prompt_tokens,
        "cache_creation_input_tokens": knobs.cache_creation_input_tokens,
        "cache_read_input_tokens": knobs.cache_read_input_tokens,
    }


def _anthropic_sse(kind: str, payload: dict[str, Any]) -> bytes:
    return (
        b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"
    )


async def _messages(
    fake: FakeUpstream, knobs: Knobs, body: dict[str, Any], receive: Receive, send: Send
) -> None:
    pieces = reply_pieces(knobs.reply, _max_pieces(body))
    stop_reason = "max_tokens" if len(pieces) < len(reply_pieces(knobs.reply)) else "end_turn"
    tool_block: dict[str, Any] | None = None
    if knobs.tool_use is not None:
        stop_reason = "tool_use"
        name, tool_input = knobs.tool_use
        tool_block = {"type": "tool_use", "id": f"toolu_fake{uuid.uuid4().hex[:16]}", "name": name}
    output_tokens = len(pieces) if knobs.completion_tokens is None else knobs.completion_tokens
    message: dict[str, Any] = {
        "id": f"msg_fake{uuid.uuid4().hex[:16]}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "fake"),
        "stop_sequence": None,
    }
    if not body.get("stream"):
        await _send_json(
            send,
            200,
            {
                **message,
                "content": [{"type": "text", "text": "".join(pieces)}]
                + ([{**tool_block, "input": tool_input}] if tool_block else []),
                "stop_reason": stop_reason,
                "usage": {**_anthropic_input_usage(knobs), "output_tokens": output_tokens},
            },
        )
        return
    start_usage = {**_anthropic_input_usage(knobs), "output_tokens": 1}
    events = [
        (
            _anthropic_sse(
                "message_start",
                {"message": {**message, "content": [], "stop_reason": None, "usage": start_usage}},
            ),
            False,
        ),
        (
            _anthropic_sse(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            ),
            False,
        ),
        (_anthropic_sse("ping", {}), False),
    ]
    events += [
        (
            _anthropic_sse(
                "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}
            ),
            True,
        )
        for piece in pieces
    ]
    events.append((_anthropic_sse("content_block_stop", {"index": 0}), False))
    if tool_block is not None:
        events += _anthropic_tool_events(tool_block, tool_input)
    delta: dict[str, Any] = {"delta": {"stop_reason": stop_reason, "stop_sequence": None}}
    if knobs.report_usage:
        delta["usage"] = {"output_tokens": output_tokens}
    events.append((_anthropic_sse("message_delta", delta), False))
    events.append((_anthropic_sse("message_stop", {}), False))
    await fake._stream(events, knobs, receive, send)


def _anthropic_tool_events(
    block: dict[str, Any], tool_input: dict[str, Any]
) -> list[tuple[bytes, bool]]:
    """The tool_use block as content block 1, its input JSON sent in three pieces."""
    text = orjson.dumps(tool_input).decode()
    cuts = [0, len(text) // 3, 2 * len(text) // 3, len(text)]
    events = [
        (
            _anthropic_sse(
                "content_block_start", {"index": 1, "content_block": {**block, "input": {}}}
            ),
            False,
        )
    ]
    events += [
        (
            _anthropic_sse(
                "content_block_delta",
                {"index": 1, "delta": {"type": "input_json_delta", "partial_json": text[a:b]}},
            ),
            True,
        )
        for a, b in itertools.pairwise(cuts)
    ]
    events.append((_anthropic_sse("content_block_stop", {"index": 1}), False))
    return events


async def _count_tokens(
    fake: FakeUpstream, knobs: Knobs, body: dict[str, Any], receive: Receive, send: Send
) -> None:
    await _send_json(send, 200, {"input_tokens": knobs.prompt_tokens})


def _responses_usage(knobs: Knobs, pieces: list[str]) -> dict[str, Any]:
    visible = len(pieces) if knobs.completion_tokens is None else knobs.completion_tokens
    output = visible + knobs.reasoning_tokens
    return {
        "input_tokens": knobs.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": knobs.cache_read_input_tokens,
            "cache_write_tokens": 0,
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": knobs.reasoning_tokens},
        "total_tokens": knobs.prompt_tokens + output,
    }


def _input_items(raw: object) -> list[dict[str, Any]]:
    """A request's input as the items OpenAI lists for it, each with an id."""
    items = [{"role": "user", "content": [{"type": "input_text", "text": raw}]}]
    listed = raw if isinstance(raw, list) else items
    return [
        {"id": f"item_fake{index}", "type": "message", **item} if isinstance(item, dict) else {}
        for index, item in enumerate(listed)
    ]


def _responses_sse(kind: str, sequence: "itertools.count[int]", **payload: Any) -> bytes:
    event = {"type": kind, **payload, "sequence_number": next(sequence)}
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


async def _responses(
    fake: FakeUpstream, knobs: Knobs, body: dict[str, Any], receive: Receive, send: Send
) -> None:
    bound = body.get("max_output_tokens")
    pieces = reply_pieces(knobs.reply, bound if isinstance(bound, int) and bound > 0 else None)
    cut = len(pieces) < len(reply_pieces(knobs.reply))
    text = "".join(pieces)
    message_id = f"msg_fake{uuid.uuid4().hex[:16]}"
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    message = {"id": message_id, "type": "message", "role": "assistant", "status": "completed"}
    output: list[dict[str, Any]] = [{**message, "content": [part]}]
    arguments = ""
    if knobs.tool_use is not None:
        name, tool_input = knobs.tool_use
        arguments = orjson.dumps(tool_input).decode()
        call = {
            "id": f"fc_fake{uuid.uuid4().hex[:16]}",
            "type": "function_call",
            "status": "completed",
            "call_id": f"call_fake{uuid.uuid4().hex[:16]}",
            "name": name,
            "arguments": arguments,
        }
        output.append(call)
    response: dict[str, Any] = {
        "id": f"resp_fake{uuid.uuid4().hex[:16]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if cut else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "error": None,
        "model": body.get("model", "fake"),
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "store": body.get("store", True),
        "usage": _responses_usage(knobs, pieces) if knobs.report_usage else None,
    }
    if body.get("store") is not False:
        fake.stored_responses[response["id"]] = StoredResponse(
            response, _input_items(body.get("input"))
        )
    if not body.get("stream"):
        await _send_json(send, 200, response)
        return
    sequence = itertools.count()
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    at = {"item_id": message_id, "output_index": 0}
    empty_part = {**part, "text": ""}
    events: list[tuple[bytes, bool]] = [
        (_responses_sse("response.created", sequence, response=started), False),
        (_responses_sse("response.in_progress", sequence, response=started), False),
        (
            _responses_sse(
                "response.output_item.added",
                sequence,
                output_index=0,
                item={**message, "status": "in_progress", "content": []},
            ),
            False,
        ),
        (
            _responses_sse(
                "response.content_part.added", sequence, **at, content_index=0, part=empty_part
            ),
            False,
        ),
    ]
    events += [
        (
            _responses_sse(
                "response.output_text.delta",
                sequence,
                **at,
                content_index=0,
                delta=piece,
                logprobs=[],
            ),
            True,
        )
        for piece in pieces
    ]
    events += [
        (
            _responses_sse(
                "response.output_text.done", sequence, **at, content_index=0, text=text, logprobs=[]
            ),
            False,
        ),
        (
            _responses_sse(
                "response.content_part.done", sequence, **at, content_index=0, part=part
            ),
            False,
        ),
        (
            _responses_sse("response.output_item.done", sequence, output_index=0, item=output[0]),
            False,
        ),
    ]
    if len(output) > 1:
        events += _responses_call_events(output[1], arguments, sequence)
    final = "response.incomplete" if cut else "response.completed"
    events.append((_responses_sse(final, sequence, response=response), False))
    await fake._stream(events, knobs, receive, send)


def _responses_call_events(
    call: dict[str, Any], arguments: str, sequence: "itertools.count[int]"
) -> list[tuple[bytes, bool]]:
    """The function_call item as output 1, its arguments sent in three pieces."""
    at = {"item_id": call["id"], "output_index": 1}
    cuts = [0, len(arguments) // 3, 2 * len(arguments) // 3, len(arguments)]
    added = {**call, "status": "in_progress", "arguments": ""}
    events = [
        (_responses_sse("response.output_item.added", sequence, output_index=1, item=added), False)
    ]
    events += [
        (
            _responses_sse(
                "response.function_call_arguments.delta", sequence, **at, delta=arguments[a:b]
            ),
            True,
        )
        for a, b in itertools.pairwise(cuts)
    ]
    events += [
        (
            _responses_sse(
                "response.function_call_arguments.done",
                sequence,
                **at,
                name=call["name"],
                arguments=arguments,
            ),
            False,
        ),
        (_responses_sse("response.output_item.done", sequence, output_index=1, item=call), False),
    ]
    return events


_Handler = Callable[[FakeUpstream, Knobs, dict[str, Any], Receive, Send], Awaitable[None]]
_HANDLERS: dict[str, _Handler] = {
    "/v1/chat/completions": _chat,
    "/v1/completions": _completions,
    "/v1/embeddings": _embeddings,
    "/v1/messages": _messages,
    "/v1/messages/count_tokens": _count_tokens,
    "/v1/responses": _responses,
}
_STORED_PREFIX = "/v1/responses/"
