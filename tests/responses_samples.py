"""Responses API requests of the shapes real clients send, with made-up text.

``codex_request`` has the shape Codex CLI 0.171 sends to a custom provider
(recorded against a local server; see the project's notes): developer and user
messages with item ids, two text parts in one message, function tools with
``strict: false``, a ``namespace`` tool, an offered ``web_search``, and the
settings Codex always sends (``store: false``, encrypted reasoning included,
``reasoning.summary``, ``prompt_cache_key``, its own ``client_metadata``).
"""

from typing import Any

import orjson

SHELL_TOOL = {
    "type": "function",
    "name": "exec_command",
    "description": "Runs a shell command.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
        "required": ["cmd"],
        "additionalProperties": False,
    },
}
AGENTS_NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for sub-agents.",
    "tools": [
        {
            "type": "function",
            "name": "spawn_agent",
            "description": "Starts a sub-agent.",
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {"task": {"type": "string"}},
                "required": ["task"],
                "additionalProperties": False,
            },
        }
    ],
}
WEB_SEARCH = {"type": "web_search", "external_web_access": False}


def codex_request(*, input_items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    items = input_items or [user("say hello")]
    return {
        "model": "spu-demo",
        "stream": True,
        "input": [
            {
                "type": "message",
                "id": "msg_dev_1",
                "role": "developer",
                "content": [{"type": "input_text", "text": "You are a coding agent."}],
            },
            {
                "type": "message",
                "id": "msg_dev_2",
                "role": "developer",
                "content": [
                    {"type": "input_text", "text": "<skills>none</skills>"},
                    {"type": "input_text", "text": "<permissions>read-only</permissions>"},
                ],
            },
            {
                "type": "message",
                "id": "msg_env",
                "role": "user",
                "content": [{"type": "input_text", "text": "<environment_context/>"}],
            },
            *items,
        ],
        "tools": [SHELL_TOOL, AGENTS_NAMESPACE, WEB_SEARCH],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0f1e2d3c-session",
        "client_metadata": {"x-codex-turn-metadata": "{}", "session_id": "0f1e2d3c-session"},
    }


def user(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_user",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }


def function_call(
    call_id: str, name: str, arguments: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": orjson.dumps(arguments).decode(),
        **extra,
    }


def function_output(call_id: str, output: str | list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "function_call_output",
        "id": f"fco_{call_id}",
        "call_id": call_id,
        "output": output,
    }


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """The events of a Responses stream, each checked to carry its type on its ``event:`` line."""
    events: list[dict[str, Any]] = []
    for block in raw.split(b"\n\n"):
        if not block:
            continue
        name_line, data_line = block.split(b"\n")
        event = orjson.loads(data_line.removeprefix(b"data: "))
        assert name_line == b"event: " + event["type"].encode()
        events.append(event)
    return events


def chat_chunks(*chunks: dict[str, Any], done: bool = True) -> bytes:
    """A Chat Completions stream of these chunks (each given its id, object and model)."""
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    body = b"".join(b"data: " + orjson.dumps({**head, **chunk}) + b"\n\n" for chunk in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def delta(finish_reason: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": finish_reason}]}


def usage_chunk(
    prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0
) -> dict[str, Any]:
    return {
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    }
