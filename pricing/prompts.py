"""Prompt token counts of OpenAI chat and Anthropic Messages bodies, erring high.

They size the hold before a call, so every approximation over-counts:

- each message costs its text plus a fixed frame (OpenAI's cookbook: 3 tokens a
  message, 1 more for a name, 3 to prime the reply);
- an image costs a fixed bound, the most a current model charges for one image;
- tool definitions, tool calls and anything unrecognised cost their JSON text;
- opaque payloads (base64 PDFs, audio, files) cost their UTF-8 byte length:
  never below the tokens of that text (every token is at least one byte), far
  above what typical files are billed, and no megabytes tokenised on the
  request path;
- a document given by URL or file id cannot be sized offline and is bounded by
  the context window it must fit in.

Bodies are untrusted JSON: any shape is counted, none raises.
"""

import json
from collections.abc import Mapping, Sequence

import tiktoken

from pricing.tokens import encoding_for_model

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3

IMAGE_TOKENS_BOUND = 5_000
"""The most one image costs on current models but gpt-4o-mini: Claude's largest
(3.75 MP at 750 px a token), OpenAI's tiled (85 + 170 × 8) and patch-based (1 536 × 2.46)."""

GPT_4O_MINI_IMAGE_TOKENS_BOUND = 48_169
"""gpt-4o-mini bills an image as 2 833 + 5 667 tokens a tile, up to 8 tiles."""

UNSIZED_DOCUMENT_TOKENS = 200_000
"""A document by URL or file id: at most the context window (200k for most Claude models)."""

OPENAI_TOOLS_OVERHEAD_TOKENS = 32
"""The wrapper text OpenAI puts around the tool list it renders into the prompt."""

ANTHROPIC_TOOLS_SYSTEM_PROMPT_TOKENS = 530
"""The largest tool-use system prompt Anthropic documents (Claude 3 Opus, tool_choice auto)."""

MAX_NESTING = 8
"""Blocks nested deeper than this (tool results in tool results…) are counted as opaque bytes."""


def image_tokens_bound(model: str) -> int:
    """The most tokens one image can cost on ``model``."""
    bare_name = model.rsplit("/", 1)[-1].lower()
    if bare_name.startswith("gpt-4o-mini"):
        return GPT_4O_MINI_IMAGE_TOKENS_BOUND
    return IMAGE_TOKENS_BOUND


def _opaque_tokens(value: object) -> int:
    """UTF-8 bytes of every string and scalar in ``value``: at least its token count.

    Walked with an explicit stack, not recursion, so a hostile body nested
    to the interpreter's limit is still sized.
    """
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item.encode("utf-8", errors="surrogatepass"))
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif item is not None:
            total += len(str(item))
    return total


class _Counter:
    """One encoding and image bound for a whole body, so each is looked up once."""

    def __init__(self, model: str) -> None:
        self.encoding: tiktoken.Encoding = encoding_for_model(model)
        self.image_tokens = image_tokens_bound(model)

    def text(self, value: object) -> int:
        """Tokens of a string, or of any other value's JSON text; nothing for null."""
        if value is None:
            return 0
        if isinstance(value, str):
            return len(self.encoding.encode_ordinary(value))
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except RecursionError:
            return _opaque_tokens(value)
        return len(self.encoding.encode_ordinary(text))

    def openai_part(self, part: object) -> int:
        if not isinstance(part, Mapping):
            return self.text(part)
        kind = part.get("type")
        if kind == "text":
            return self.text(part.get("text"))
        if kind == "refusal":
            return self.text(part.get("refusal"))
        if kind == "image_url":
            return self.image_tokens
        if kind == "file":
            file = part.get("file")
            if isinstance(file, Mapping) and file.get("file_data") is None:
                return UNSIZED_DOCUMENT_TOKENS
            return _opaque_tokens(part)
        if kind == "input_audio":
            return _opaque_tokens(part)
        return self.text(part)

    def openai_content(self, content: object) -> int:
        if isinstance(content, list):
            return sum(self.openai_part(part) for part in content)
        return self.text(content)

    def anthropic_content(self, content: object, depth: int) -> int:
        if depth > MAX_NESTING:
            return _opaque_tokens(content)
        if isinstance(content, list):
            return sum(self.anthropic_block(block, depth) for block in content)
        return self.text(content)

    def anthropic_block(self, block: object, depth: int) -> int:
        if not isinstance(block, Mapping):
            return self.text(block)
        kind = block.get("type")
        if kind == "text":
            return self.text(block.get("text"))
        if kind == "image":
            return self.image_tokens
        if kind == "thinking":
            return self.text(block.get("thinking"))
        if kind == "redacted_thinking":
            return _opaque_tokens(block.get("data"))
        if kind == "tool_result":
            return self.text(block.get("tool_use_id")) + self.anthropic_content(
                block.get("content"), depth + 1
            )
        if kind == "document":
            return self.document(block, depth)
        return self.text(block)

    def document(self, block: Mapping[str, object], depth: int) -> int:
        framing = self.text(block.get("title")) + self.text(block.get("context"))
        source = block.get("source")
        if not isinstance(source, Mapping):
            return framing + self.text(source)
        kind = source.get("type")
        if kind == "text":
            return framing + self.text(source.get("data"))
        if kind == "content":
            return framing + self.anthropic_content(source.get("content"), depth + 1)
        if kind == "base64":
            return framing + _opaque_tokens(source.get("data"))
        return framing + UNSIZED_DOCUMENT_TOKENS


def count_chat_prompt_tokens(
    messages: Sequence[object],
    model: str,
    tools: Sequence[object] | None = None,
) -> int:
    """Prompt tokens of an OpenAI chat request, never fewer than the provider will count."""
    counter = _Counter(model)
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE
        if not isinstance(message, Mapping):
            total += counter.text(message)
            continue
        for key, value in message.items():
            if key == "content":
                total += counter.openai_content(value)
            else:
                total += counter.text(value)
            if key == "name":
                total += TOKENS_PER_NAME
    if tools:
        total += OPENAI_TOOLS_OVERHEAD_TOKENS + counter.text(list(tools))
    return total


def count_anthropic_prompt_tokens(
    system: object,
    messages: Sequence[object],
    tools: Sequence[object] | None,
    model: str,
) -> int:
    """Prompt tokens of an Anthropic Messages request (``system`` as string or blocks)."""
    counter = _Counter(model)
    total = REPLY_PRIMING_TOKENS
    if system:
        total += TOKENS_PER_MESSAGE + counter.anthropic_content(system, depth=0)
    for message in messages:
        total += TOKENS_PER_MESSAGE
        if isinstance(message, Mapping):
            total += counter.text(message.get("role"))
            total += counter.anthropic_content(message.get("content"), depth=0)
        else:
            total += counter.text(message)
    if tools:
        total += ANTHROPIC_TOOLS_SYSTEM_PROMPT_TOKENS + counter.text(list(tools))
    return total
