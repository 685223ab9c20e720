"""How a metered call goes to an OpenAI-format upstream: chat completions, completions, embeddings.

One exchange serves every OpenAI-format upstream: a provider's API, the demo
model and litellm's providers (both answer in OpenAI's format). Refusals are
relayed as they came, replies unchanged, streams event by event.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi.responses import Response

from pricing import PromptTokens, TokenCounts
from proxy.call.relay import Exchange, relayed
from proxy.call.tally import Tally
from proxy.openai.counts import choices_text, reported_openai_counts
from proxy.openai.stream import OpenAIStreamTap
from proxy.upstream.network import UpstreamResponse

EMBEDDINGS = "embeddings"


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAIExchange(Exchange):
    client_wants_usage: bool = False
    """Whether the client asked for the usage chunk the gateway always asks the upstream for."""

    source: ClassVar[str] = "openai"
    relayed_error_headers: ClassVar[tuple[str, ...]] = (
        "retry-after",
        "retry-after-ms",
        "x-should-retry",
    )

    def refusal(self, raw: bytes, upstream: UpstreamResponse, headers: dict[str, str]) -> Response:
        return relayed(raw, upstream, headers)

    async def reply(self, raw: bytes, body: Any) -> tuple[bytes, TokenCounts]:
        reply = OpenAIReply(
            body,
            embeddings=self.operation == EMBEDDINGS,
            encoding_model=self.model.route.provider_model,
            prompt=self.prompt,
        )
        return raw, await reply.final()

    def tap(self) -> OpenAIStreamTap:
        return OpenAIStreamTap(
            drop_usage_chunk=not self.client_wants_usage,
            encoding_model=self.model.route.provider_model,
            prompt=self.prompt,
        )


class OpenAIReply(Tally):
    """A complete OpenAI reply: its reported counts, and its choices' text to count without them."""

    def __init__(
        self, body: Any, *, embeddings: bool, encoding_model: str, prompt: PromptTokens
    ) -> None:
        super().__init__(encoding_model=encoding_model, prompt=prompt)
        self._body: dict[str, Any] = body if isinstance(body, dict) else {}
        self.reported = reported_openai_counts(self._body.get("usage"), embeddings=embeddings)

    @property
    def generated_text(self) -> str:
        return choices_text(self._body)
