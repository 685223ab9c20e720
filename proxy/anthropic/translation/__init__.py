"""Anthropic Messages ⇄ OpenAI Chat Completions, for models whose upstream speaks OpenAI.

One org token then works from either SDK against any served model. Written by
hand rather than with litellm's ``LiteLLMAnthropicMessagesAdapter``: that
adapter works on litellm's own response objects, not on the wire bytes this
gateway relays, and importing it loads all of litellm (hundreds of MB and
seconds per worker) on the first such request.

- ``request``: a Messages request as a Chat Completions request;
- ``reply``: a Chat Completions reply or error as a Messages reply or error;
- ``stream``: a chat stream as the Messages event sequence.
"""

from proxy.anthropic.translation.reply import anthropic_error, anthropic_message, tool_input
from proxy.anthropic.translation.request import openai_request
from proxy.anthropic.translation.stream import AnthropicStreamFromOpenAI

__all__ = [
    "AnthropicStreamFromOpenAI",
    "anthropic_error",
    "anthropic_message",
    "openai_request",
    "tool_input",
]
