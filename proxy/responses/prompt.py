"""The prompt tokens of a Responses request, erring high, for the hold placed before it runs.

The request is sized as the Chat Completions messages it amounts to, by the
same rules as a chat request (``chat_prompt_tokens``: its cheap bound, and
its exact count when that is refused): message text by
the model's encoding, each image at the most an image costs, inline files by
their bytes, files by id at the context window, tool definitions and tool
calls by their JSON. Items without a Chat equivalent (reasoning with its
encrypted content, hosted-tool calls) are counted by their JSON text, which is
never fewer tokens than they hold. Any shape is counted; none raises.
"""

from collections.abc import Mapping
from typing import Any

from pricing import PromptTokens, chat_prompt_tokens

_CHAT_PARTS = {
    "input_text": "text",
    "output_text": "text",
    "input_image": "image_url",
    "input_file": "file",
}


def _chat_part(part: object) -> object:
    if not isinstance(part, Mapping):
        return part
    kind = _CHAT_PARTS.get(str(part.get("type")))
    if kind == "text":
        return {"type": "text", "text": part.get("text")}
    if kind == "image_url":
        return {"type": "image_url"}
    if kind == "file":
        return {"type": "file", "file": {"file_data": part.get("file_data")}}
    return part


def _chat_content(content: object) -> object:
    return [_chat_part(part) for part in content] if isinstance(content, list) else content


def _chat_message(item: object) -> object:
    if not isinstance(item, Mapping):
        return item
    if "content" in item:
        return {**item, "content": _chat_content(item["content"])}
    if isinstance(item.get("output"), list):
        return {**item, "output": _chat_content(item["output"])}
    return item


def prompt_tokens(body: Mapping[str, Any], model: str) -> PromptTokens:
    messages: list[object] = []
    if body.get("instructions") is not None:
        messages.append({"role": "system", "content": body["instructions"]})
    raw = body.get("input")
    if isinstance(raw, list):
        messages.extend(_chat_message(item) for item in raw)
    elif raw is not None:
        messages.append({"role": "user", "content": raw})
    tools = body.get("tools")
    return chat_prompt_tokens(messages, model, tools if isinstance(tools, list) else None)
