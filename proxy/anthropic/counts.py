"""The token counts an Anthropic upstream reports, and the text its reply generated."""

from collections.abc import Mapping

import orjson

from pricing import TokenCounts, counts_from_anthropic
from proxy.call.tally import reported_counts


def reported_anthropic_counts(usage: object) -> TokenCounts | None:
    """A Messages usage object as token counts, or None when absent or unreadable."""
    return reported_counts(usage, counts_from_anthropic)


def content_text(content: object) -> str:
    """What a Messages reply's content blocks generated: text, thinking, tool input JSON."""
    parts: list[str] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, Mapping):
            continue
        for key in ("text", "thinking"):
            if isinstance(block.get(key), str):
                parts.append(block[key])
        if block.get("type") == "tool_use":
            parts.append(orjson.dumps(block.get("input") or {}).decode())
    return "".join(parts)
