"""A Responses request's ``instructions`` and ``input``, read into a conversation once.

``input`` is a string (one user message) or a list of items. Each item is read
into one ``Entry``, checked as it is read, so that both translations (to Chat
Completions and to Anthropic Messages) render the same conversation and refuse
the same things, with the parameter named (``input[3].content[0]``):

- messages of any role; ``developer`` is the ``system`` role of other APIs;
- ``function_call`` / ``custom_tool_call`` items and their outputs, the call's
  name flattened as ``tools`` flattens it;
- ``reasoning`` items, kept for upstreams that can read them back.

An ``item_reference`` (an item the upstream stored) and hosted-tool items
cannot be replayed to another upstream and are refused.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from proxy.errors import bad_request
from proxy.responses.tools import flat_name, unsupported

Role = Literal["system", "user", "assistant"]
_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}
_TEXT_PARTS = ("input_text", "output_text", "text", "summary_text", "reasoning_text")


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    """An ``https:`` or ``data:`` URL."""
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class File:
    filename: str | None
    file_data: str | None
    """A ``data:`` URL or base64 text, when the file comes inline."""
    file_id: str | None


Part = Text | Image | File


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    upstream_name: str
    arguments: str
    """The call's arguments as JSON text (a custom tool's input as ``{"input": …}``)."""


@dataclass(frozen=True, slots=True)
class ToolOutput:
    call_id: str
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Reasoning:
    text: str
    encrypted_content: str | None


Entry = Message | ToolCall | ToolOutput | Reasoning


def checked_input(raw: object) -> str | list[Any]:
    """``input`` as the API allows it: a string, or a non-empty array (its items read later)."""
    if isinstance(raw, str) or (isinstance(raw, list) and raw):
        return raw
    raise bad_request("'input' must be a string or a non-empty array of items.", param="input")


def conversation(body: Mapping[str, Any]) -> list[Entry]:
    """``instructions`` as the first system message, then every input item, in order."""
    entries: list[Entry] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise bad_request("'instructions' must be a string.", param="instructions")
        if instructions:
            entries.append(Message("system", (Text(instructions),)))
    raw = checked_input(body.get("input"))
    if isinstance(raw, str):
        entries.append(Message("user", (Text(raw),)))
        return entries
    for index, item in enumerate(raw):
        entries.append(_entry(item, f"input[{index}]"))
    return entries


def _entry(item: object, param: str) -> Entry:
    if not isinstance(item, Mapping):
        raise bad_request(f"'{param}' must be an object.", param=param)
    kind = item.get("type", "message")
    if kind == "message":
        return _message(item, param)
    if kind == "function_call":
        return ToolCall(
            _string(item, "call_id", param),
            flat_name(_string(item, "name", param), _namespace(item, param)),
            _string(item, "arguments", param, empty=True),
        )
    if kind == "custom_tool_call":
        text = _string(item, "input", param, empty=True)
        return ToolCall(
            _string(item, "call_id", param),
            flat_name(_string(item, "name", param), _namespace(item, param)),
            orjson.dumps({"input": text}).decode(),
        )
    if kind in ("function_call_output", "custom_tool_call_output"):
        return ToolOutput(_string(item, "call_id", param), _output(item.get("output"), param))
    if kind == "reasoning":
        return _reasoning(item, param)
    if kind == "item_reference":
        raise unsupported("An item_reference (an item stored upstream)", param)
    raise unsupported(f"An input item of type '{kind}'", f"{param}.type")


def _string(item: Mapping[str, Any], name: str, param: str, *, empty: bool = False) -> str:
    value = item.get(name)
    if not isinstance(value, str) or (not value and not empty):
        raise bad_request(f"'{param}.{name}' must be a non-empty string.", param=f"{param}.{name}")
    return value


def _namespace(item: Mapping[str, Any], param: str) -> str | None:
    namespace = item.get("namespace")
    if namespace is None:
        return None
    if not isinstance(namespace, str):
        raise bad_request(f"'{param}.namespace' must be a string.", param=f"{param}.namespace")
    return namespace or None


def _message(item: Mapping[str, Any], param: str) -> Message:
    role = _ROLES.get(str(item.get("role")))
    if role is None:
        raise bad_request(
            f"'{param}.role' must be one of 'user', 'assistant', 'system' or 'developer'.",
            param=f"{param}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        return Message(role, (Text(content),))
    if not isinstance(content, list):
        raise bad_request(
            f"'{param}.content' must be a string or an array.", param=f"{param}.content"
        )
    parts = tuple(_part(part, f"{param}.content[{index}]") for index, part in enumerate(content))
    if role != "user" and any(not isinstance(part, Text) for part in parts):
        raise unsupported(f"An image or file in a {item.get('role')} message", f"{param}.content")
    return Message(role, parts)


def _part(part: object, param: str) -> Part:
    if not isinstance(part, Mapping):
        raise bad_request(f"'{param}' must be an object.", param=param)
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return Text(_string(part, "text", param, empty=True))
    if kind == "refusal":
        return Text(_string(part, "refusal", param, empty=True))
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise unsupported("An input_image without an image_url (by file_id)", param)
        detail = part.get("detail")
        return Image(url, detail if isinstance(detail, str) else None)
    if kind == "input_file":
        return _file(part, param)
    raise unsupported(f"A content part of type '{kind}'", f"{param}.type")


def _file(part: Mapping[str, Any], param: str) -> File:
    if part.get("file_url") is not None:
        raise unsupported("An input_file by file_url", param)
    filename = part.get("filename")
    file_data = part.get("file_data")
    file_id = part.get("file_id")
    if not (isinstance(file_data, str) and file_data) and not (
        isinstance(file_id, str) and file_id
    ):
        raise bad_request(f"'{param}' needs a file_data or a file_id.", param=param)
    return File(
        filename if isinstance(filename, str) else None,
        file_data if isinstance(file_data, str) and file_data else None,
        file_id if isinstance(file_id, str) and file_id else None,
    )


def _output(output: object, param: str) -> tuple[Part, ...]:
    if isinstance(output, str):
        return (Text(output),)
    if not isinstance(output, list):
        raise bad_request(
            f"'{param}.output' must be a string or an array.", param=f"{param}.output"
        )
    return tuple(_part(part, f"{param}.output[{index}]") for index, part in enumerate(output))


def _reasoning(item: Mapping[str, Any], param: str) -> Reasoning:
    """The model's reasoning text (its full text if given, else its summary) and signature."""
    texts: list[str] = []
    for field in ("content", "summary"):
        parts = item.get(field)
        if parts is None:
            continue
        if not isinstance(parts, list):
            raise bad_request(f"'{param}.{field}' must be an array.", param=f"{param}.{field}")
        texts = [
            part.text
            for index, raw in enumerate(parts)
            if isinstance(part := _part(raw, f"{param}.{field}[{index}]"), Text)
        ]
        if texts:
            break
    encrypted = item.get("encrypted_content")
    if encrypted is not None and not isinstance(encrypted, str):
        raise bad_request(
            f"'{param}.encrypted_content' must be a string.", param=f"{param}.encrypted_content"
        )
    return Reasoning("".join(texts), encrypted or None)
