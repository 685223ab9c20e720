"""A Chat Completions answer as a Response: the plain body, or the stream event by event.

The stream translator is a stream tap: each piece of the upstream's bytes is
answered at once with the Responses events it completes, never held back for
the end. Like the gateway's other taps it keeps what metering needs: the
provider's usage from the closing usage chunk (the relay asks for it with
``stream_options.include_usage``), or, for a stream cut short, the text
generated so far to count.
"""

from collections.abc import Mapping
from typing import Any, Unpack

from pricing import TokenCounts
from proxy.call.sse import DONE
from proxy.openai.counts import reported_openai_counts
from proxy.responses.tools import Tools
from proxy.responses.translated_stream import StreamOptions, TranslatedStream
from proxy.responses.usage import chat_reasoning_tokens, responses_usage
from proxy.responses.writer import ResponseWriter, new_id

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Chat's finish reasons that end a Response as ``incomplete``, with the reason it names."""
_REASONING_FIELDS = ("reasoning_content", "reasoning")
"""Where OpenAI-compatible servers (litellm, vLLM, DeepSeek) put a reasoning model's thoughts."""


def _write_message(writer: ResponseWriter, message: Mapping[str, Any], tools: Tools) -> None:
    for field in _REASONING_FIELDS:
        if isinstance(message.get(field), str):
            writer.reasoning(message[field])
    if isinstance(message.get("content"), str):
        writer.text(message["content"])
    if isinstance(message.get("refusal"), str):
        writer.refusal(message["refusal"])
    for index, call in enumerate(message.get("tool_calls") or []):
        if not isinstance(call, Mapping):
            continue
        raw_function = call.get("function")
        function: Mapping[str, Any] = raw_function if isinstance(raw_function, Mapping) else {}
        call_id = call.get("id")
        writer.tool_call(
            index,
            call_id=call_id if isinstance(call_id, str) and call_id else new_id("call"),
            tool=tools.called(str(function.get("name") or "")),
        )
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            writer.arguments(index, arguments)


def response_from_chat(
    body: Mapping[str, Any],
    request: Mapping[str, Any],
    *,
    tools: Tools,
    model_name: str,
    usage: TokenCounts,
) -> dict[str, Any]:
    """The Response for a plain Chat Completions answer, ``usage`` being what is charged."""
    writer = ResponseWriter(request, model=model_name)
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, Mapping) else {}
    message = choice.get("message")
    if isinstance(message, Mapping):
        _write_message(writer, message, tools)
    writer.complete(
        responses_usage(usage, reasoning_tokens=chat_reasoning_tokens(body.get("usage"))),
        incomplete_reason=INCOMPLETE_REASONS.get(str(choice.get("finish_reason"))),
    )
    return writer.response


class ResponsesFromChat(TranslatedStream):
    """Turns a Chat Completions stream into Responses events, chunk by chunk."""

    def __init__(self, request: Mapping[str, Any], **options: Unpack[StreamOptions]) -> None:
        super().__init__(request, **options)
        self._finish_reason: str | None = None
        self._reasoning_tokens = 0
        self._call_keys: set[int] = set()

    @property
    def generated_text(self) -> str:
        return self._writer.generated_text

    @property
    def _upstream_finished(self) -> bool:
        return self._finish_reason is not None

    def _translate(self, chunk: Any) -> list[bytes]:
        if chunk == DONE:
            return self._end_when_settled()
        if not isinstance(chunk, dict):
            return []
        if isinstance(chunk.get("error"), dict):
            self.error = chunk["error"]
            return self._writer.fail(str(chunk["error"].get("message") or "The upstream failed."))
        usage = reported_openai_counts(chunk.get("usage"))
        if usage is not None:
            self.reported = usage
            self._reasoning_tokens = chat_reasoning_tokens(chunk["usage"])
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return []
        self.content_events += 1
        out = self._writer.start()
        delta = choice.get("delta")
        if isinstance(delta, dict):
            out.extend(self._delta(delta))
        if choice.get("finish_reason"):
            self._finish_reason = str(choice["finish_reason"])
        return out

    def _delta(self, delta: Mapping[str, Any]) -> list[bytes]:
        writer = self._writer
        out: list[bytes] = []
        for field in _REASONING_FIELDS:
            if isinstance(delta.get(field), str):
                out.extend(writer.reasoning(delta[field]))
        if isinstance(delta.get("content"), str):
            out.extend(writer.text(delta["content"]))
        if isinstance(delta.get("refusal"), str):
            out.extend(writer.refusal(delta["refusal"]))
        for call in delta.get("tool_calls") or []:
            if not isinstance(call, Mapping):
                continue
            index = call.get("index")
            key = index if isinstance(index, int) and not isinstance(index, bool) else 0
            raw_function = call.get("function")
            function: Mapping[str, Any] = raw_function if isinstance(raw_function, Mapping) else {}
            if key not in self._call_keys:
                self._call_keys.add(key)
                call_id = call.get("id")
                out.extend(
                    writer.tool_call(
                        key,
                        call_id=call_id if isinstance(call_id, str) and call_id else new_id("call"),
                        tool=self._tools.called(str(function.get("name") or "")),
                    )
                )
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                out.extend(writer.arguments(key, arguments))
        return out

    def _complete(self, counts: TokenCounts) -> list[bytes]:
        return self._writer.complete(
            responses_usage(counts, reasoning_tokens=self._reasoning_tokens),
            incomplete_reason=INCOMPLETE_REASONS.get(self._finish_reason or ""),
        )
