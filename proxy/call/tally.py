"""What a call produced, as the gateway saw it pass, and the one rule for what it is charged.

The rule, for every protocol, streamed or not: the provider's reported
counts; else what was generated, counted by the gateway; else, for a stream
that ended producing nothing (cut before any content, or ended by the
upstream's error), nothing: the hold is released.

Counting is tokenizing (the generated text, and the prompt exactly when the
provider reported no input count), so it runs in a worker thread, never on
the event loop; the provider's own counts are taken as they are.

Protocols differ only in where they find the counts and the text, so each
reply reader and stream tap is a ``Tally`` that fills in ``reported``,
``running``, ``content_events``, ``error`` and the generated text.
"""

import asyncio
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from pricing import InvalidTokenCounts, PromptTokens, TokenCounts, count_text_tokens
from proxy.call.metered_call import Ending

CountsReader = Callable[[Mapping[str, object]], TokenCounts]
"""``pricing``'s reader of one provider's usage object; raises ``InvalidTokenCounts``."""

NO_COUNTS: Mapping[str, int] = MappingProxyType({})


def reported_counts(usage: object, read: CountsReader) -> TokenCounts | None:
    """A provider's usage object as token counts; None when it sent none or an unreadable one
    (the call is then counted, never given away)."""
    if not isinstance(usage, Mapping):
        return None
    try:
        return read(usage)
    except InvalidTokenCounts:
        return None


class Tally:
    def __init__(self, *, encoding_model: str, prompt: PromptTokens) -> None:
        self.encoding_model = encoding_model
        self.prompt = prompt
        self.reported: TokenCounts | None = None
        """The provider's own final counts, once it has reported readable ones."""
        self.running: Mapping[str, int] = NO_COUNTS
        """Counts the provider reported before its final ones (by usage field name)."""
        self.content_events = 0
        self.error: Mapping[str, Any] | None = None
        """The upstream's error event, when it ended a stream with one."""
        self._text_parts: list[str] = []

    @property
    def generated_text(self) -> str:
        """What the upstream generated, as text to count: content, reasoning, tool calls."""
        return "".join(self._text_parts)

    def counted(self) -> TokenCounts:
        """What was generated, counted with the model's tokenizer (CPU: off the event loop).

        Input counts the provider already reported are kept (else the prompt's
        exact count stands), and its running output count when it is the higher.
        """
        running = self.running
        input_tokens = running.get("input_tokens")
        return TokenCounts(
            input_tokens=self.prompt.exact() if input_tokens is None else input_tokens,
            output_tokens=max(
                count_text_tokens(self.generated_text, self.encoding_model),
                running.get("output_tokens", 0),
            ),
            cache_creation_input_tokens=running.get("cache_creation_input_tokens", 0),
            cache_read_input_tokens=running.get("cache_read_input_tokens", 0),
        )

    async def final(self) -> TokenCounts:
        """The provider's counts, else what was generated, counted in a worker thread."""
        if self.reported is not None:
            return self.reported
        return await asyncio.to_thread(self.counted)

    async def owed(self, ending: Ending) -> TokenCounts | None:
        """What a call that ended so is charged: ``final()``, or None when it produced nothing."""
        if (
            self.reported is None
            and not self.content_events
            and (ending is not Ending.OK or self.error is not None)
        ):
            return None
        return await self.final()
