"""Prompt tokens of OpenAI chat and Anthropic Messages bodies: a cheap bound, and an exact count.

Both size the hold before a call, so both err high, and both come from one
walk of the body that differs only in how it measures a piece of text:

- the **exact count** tokenizes each piece with the model's tiktoken encoding;
- the **bound** takes each piece's UTF-8 byte length instead.

The bound is what every call is held for; only when the org cannot afford it
is the prompt counted exactly (``PromptTokens.exact``, off the event loop), so
that a 402's figures and its largest affordable ``max_tokens`` are exact.

Why the bound never falls below the exact count: tiktoken's encodings are
byte-level BPE, and each token stands for a non-empty run of the text's UTF-8
bytes (the tokens of a text concatenate back to exactly those bytes), so a
text of n bytes is at most n tokens. Lone surrogates, which tiktoken replaces
with U+FFFD, are measured with ``surrogatepass``: 3 bytes either way. Every
other term (message framing, images, unsized documents, opaque payloads) is
the same number in both walks. The same holds for any tokenizer whose every
token covers at least one byte of text, which is how Claude's tokenizer is
described too (it is not public); for English prose the bound is about four
times the count, for code about three, for CJK text about twice.

The walk's rules, which make both figures over-count:

- each message costs its text plus a fixed frame (OpenAI's cookbook: 3 tokens a
  message, 1 more for a name, 3 to prime the reply);
- an image costs a fixed bound, the most a current model charges for one image;
- tool definitions, tool calls, schemas and anything unrecognised cost their
  compact JSON text (as ``orjson`` writes it, the form clients send);
- opaque payloads (base64 PDFs, audio, files) cost their UTF-8 byte length:
  never below the tokens of that text, far above what typical files are
  billed, and never tokenized;
- a document given by URL or file id cannot be sized offline and is bounded by
  the context window it must fit in.

Bodies are untrusted JSON (objects are dicts, as a JSON parser makes them):
any shape is counted, none raises. The bound reads each string's length (and
encodes it only when it is not ASCII) and writes compact JSON only for
non-text values, so it costs microseconds where the exact count of a 512 KB
prompt costs milliseconds (a 150 KB Claude Code turn: about 70 µs, against
6.5 ms to tokenize it).
"""

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import partial

import orjson
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


class PromptTokens:
    """A prompt's tokens: the cheap bound at once, the exact count at most once, on demand.

    ``exact`` tokenizes the whole prompt (milliseconds for a large one), so
    callers on an event loop run it in a worker thread: tiktoken releases the
    GIL while it encodes. It is counted once, whichever thread asks first.
    """

    __slots__ = ("_count", "_exact", "_lock", "bound")

    def __init__(self, bound: int, count: Callable[[], int]) -> None:
        self.bound = bound
        self._count = count
        self._exact: int | None = None
        self._lock = threading.Lock()

    def exact(self) -> int:
        """The exact count (never above ``bound``)."""
        with self._lock:
            if self._exact is None:
                self._exact = self._count()
            return self._exact


def image_tokens_bound(model: str) -> int:
    """The most tokens one image can cost on ``model``."""
    bare_name = model.rsplit("/", 1)[-1].lower()
    if bare_name.startswith("gpt-4o-mini"):
        return GPT_4O_MINI_IMAGE_TOKENS_BOUND
    return IMAGE_TOKENS_BOUND


def utf8_length(text: str) -> int:
    """UTF-8 bytes of ``text`` (lone surrogates as 3): O(1) for ASCII, which Python flags."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", errors="surrogatepass"))


def _opaque_bytes(value: object) -> int:
    """UTF-8 bytes of every string and scalar in ``value``: at least its token count.

    Walked with an explicit stack, not recursion, so a hostile body nested
    to the interpreter's limit is still sized.
    """
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += utf8_length(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif item is not None:
            total += len(str(item))
    return total


def _compact_json(value: object) -> bytes | None:
    """``value`` as compact JSON in UTF-8 (lone surrogates kept), or None when nested too deep.

    orjson writes what any parsed body holds; the standard library takes what
    it refuses (lone surrogates, nesting past 255, non-string keys).
    """
    try:
        return orjson.dumps(value, default=str)
    except TypeError:
        pass
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (RecursionError, TypeError, ValueError):
        return None
    return text.encode("utf-8", errors="surrogatepass")


class _Walk:
    """The rules of what a body's prompt costs; subclasses say how a piece of text is measured."""

    def __init__(self, model: str) -> None:
        self.image_tokens = image_tokens_bound(model)

    def string(self, text: str) -> int:
        raise NotImplementedError

    def encoded(self, text: bytes) -> int:
        """The measure of UTF-8 text as bytes (compact JSON)."""
        raise NotImplementedError

    def text(self, value: object) -> int:
        """A string, or any other value's compact JSON text; nothing for null."""
        if value is None:
            return 0
        if isinstance(value, str):
            return self.string(value)
        encoded = _compact_json(value)
        return _opaque_bytes(value) if encoded is None else self.encoded(encoded)

    def openai_part(self, part: object) -> int:
        if not isinstance(part, dict):
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
            if isinstance(file, dict) and file.get("file_data") is None:
                return UNSIZED_DOCUMENT_TOKENS
            return _opaque_bytes(part)
        if kind == "input_audio":
            return _opaque_bytes(part)
        return self.text(part)

    def openai_content(self, content: object) -> int:
        if isinstance(content, list):
            return sum(self.openai_part(part) for part in content)
        return self.text(content)

    def chat(
        self, messages: Sequence[object], tools: Sequence[object] | None, extras: Sequence[object]
    ) -> int:
        total = REPLY_PRIMING_TOKENS
        for message in messages:
            total += TOKENS_PER_MESSAGE
            if not isinstance(message, dict):
                total += self.text(message)
                continue
            for key, value in message.items():
                if key == "content":
                    total += self.openai_content(value)
                else:
                    total += self.text(value)
                if key == "name":
                    total += TOKENS_PER_NAME
        if tools:
            total += OPENAI_TOOLS_OVERHEAD_TOKENS + self.text(list(tools))
        if extras:
            total += self.text(list(extras))
        return total

    def anthropic_content(self, content: object, depth: int) -> int:
        if depth > MAX_NESTING:
            return _opaque_bytes(content)
        if isinstance(content, list):
            return sum(self.anthropic_block(block, depth) for block in content)
        return self.text(content)

    def anthropic_block(self, block: object, depth: int) -> int:
        if not isinstance(block, dict):
            return self.text(block)
        kind = block.get("type")
        if kind == "text":
            return self.text(block.get("text"))
        if kind == "image":
            return self.image_tokens
        if kind == "thinking":
            return self.text(block.get("thinking"))
        if kind == "redacted_thinking":
            return _opaque_bytes(block.get("data"))
        if kind == "tool_result":
            return self.text(block.get("tool_use_id")) + self.anthropic_content(
                block.get("content"), depth + 1
            )
        if kind == "document":
            return self.document(block, depth)
        return self.text(block)

    def document(self, block: dict[str, object], depth: int) -> int:
        framing = self.text(block.get("title")) + self.text(block.get("context"))
        source = block.get("source")
        if not isinstance(source, dict):
            return framing + self.text(source)
        kind = source.get("type")
        if kind == "text":
            return framing + self.text(source.get("data"))
        if kind == "content":
            return framing + self.anthropic_content(source.get("content"), depth + 1)
        if kind == "base64":
            return framing + _opaque_bytes(source.get("data"))
        return framing + UNSIZED_DOCUMENT_TOKENS

    def anthropic(
        self, system: object, messages: Sequence[object], tools: Sequence[object] | None
    ) -> int:
        total = REPLY_PRIMING_TOKENS
        if system:
            total += TOKENS_PER_MESSAGE + self.anthropic_content(system, depth=0)
        for message in messages:
            total += TOKENS_PER_MESSAGE
            if isinstance(message, dict):
                total += self.text(message.get("role"))
                total += self.anthropic_content(message.get("content"), depth=0)
            else:
                total += self.text(message)
        if tools:
            total += ANTHROPIC_TOOLS_SYSTEM_PROMPT_TOKENS + self.text(list(tools))
        return total


class _Count(_Walk):
    """Tokens by the model's encoding, looked up once for the whole body."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.encoding: tiktoken.Encoding = encoding_for_model(model)

    def string(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def encoded(self, text: bytes) -> int:
        return self.string(text.decode("utf-8", errors="surrogatepass"))


class _Bound(_Walk):
    """UTF-8 bytes: never fewer than the tokens of the same text."""

    def string(self, text: str) -> int:
        return utf8_length(text)

    def encoded(self, text: bytes) -> int:
        return len(text)


def count_chat_prompt_tokens(
    messages: Sequence[object],
    model: str,
    tools: Sequence[object] | None = None,
    extras: Sequence[object] = (),
) -> int:
    """Prompt tokens of an OpenAI chat request, never fewer than the provider will count.

    ``extras`` are further prompt parts sized by their JSON (legacy
    ``functions``, a ``response_format`` schema).
    """
    return _Count(model).chat(messages, tools, extras)


def chat_prompt_tokens(
    messages: Sequence[object],
    model: str,
    tools: Sequence[object] | None = None,
    extras: Sequence[object] = (),
) -> PromptTokens:
    """``count_chat_prompt_tokens``, and its cheap bound."""
    return PromptTokens(
        _Bound(model).chat(messages, tools, extras),
        partial(count_chat_prompt_tokens, messages, model, tools, extras),
    )


def count_anthropic_prompt_tokens(
    system: object,
    messages: Sequence[object],
    tools: Sequence[object] | None,
    model: str,
) -> int:
    """Prompt tokens of an Anthropic Messages request (``system`` as string or blocks)."""
    return _Count(model).anthropic(system, messages, tools)


def anthropic_prompt_tokens(
    system: object,
    messages: Sequence[object],
    tools: Sequence[object] | None,
    model: str,
) -> PromptTokens:
    """``count_anthropic_prompt_tokens``, and its cheap bound."""
    return PromptTokens(
        _Bound(model).anthropic(system, messages, tools),
        partial(count_anthropic_prompt_tokens, system, messages, tools, model),
    )


def _count_texts(texts: Iterable[str | Sequence[int]], model: str) -> int:
    encoding = encoding_for_model(model)
    return sum(
        len(encoding.encode_ordinary(text)) if isinstance(text, str) else len(text)
        for text in texts
    )


def texts_prompt_tokens(texts: Sequence[str | Sequence[int]], model: str) -> PromptTokens:
    """Prompt tokens of plain texts (completions, embeddings); a token array is its length."""
    bound = sum(utf8_length(text) if isinstance(text, str) else len(text) for text in texts)
    return PromptTokens(bound, partial(_count_texts, texts, model))
