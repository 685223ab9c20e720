"""Claude Code's default request (no ``--bare``) through the anthropic SDK: translated and native.

Its shape is the one Claude Code 2.1 sends: a ``role: "system"`` message in the
conversation after the user's turn (with a message-level ``output_config``),
system blocks with ``cache_control``, a tool with ``defer_loading``, and the
top-level ``thinking``, ``context_management`` and ``output_config`` an OpenAI
upstream has no place for. Translated, it must be folded and trimmed, its
``message_start`` must report the prompt it is charged for; native, it must
reach the upstream as it was sent. Every Anthropic answer, success or error,
carries ``request-id``; the root answers the probes agents send first.
"""

from typing import Any

import anthropic
import httpx
import pytest

from ledger import LedgerStore
from tests.e2e.anthropic_support import (
    SONNET,
    UPSTREAM_KEY,
    UPSTREAM_KEY_ENV,
    anthropic_client,
    anthropic_routes,
)
from tests.e2e.support import Org, RunningGateway, StartGateway, wait_for_records
from tests.fakes.upstream import DEFAULT_REPLY, FakeUpstream

DEMO = "spu-demo"
SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332"},
    {
        "type": "text",
        "text": "You are Claude Code, Anthropic's official CLI for Claude.",
        "cache_control": {"type": "ephemeral"},
    },
]
TOOLS = [
    {
        "name": "Bash",
        "description": "Runs a shell command.",
        "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
    {
        "name": "DeferredToolPlaceholder",
        "description": "Loaded on demand.",
        "input_schema": {"type": "object", "properties": {}},
        "defer_loading": True,
    },
]
MESSAGES: list[dict[str, Any]] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "<system-reminder>Mind the repo.</system-reminder>"},
            {"type": "text", "text": "say hello"},
        ],
    },
    {
        "role": "system",
        "content": [
            {
                "type": "text",
                "text": "Answer in one line.",
                "cache_control": {"type": "ephemeral"},
            }
        ],
        "output_config": {"effort": "medium"},
    },
]
EXTRA_BODY = {
    "thinking": {"type": "adaptive", "display": "omitted"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "medium"},
}
BETAS = ["claude-code-20250219", "context-management-2025-06-27", "effort-2025-11-24"]


def default_request(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 32000,
        "system": SYSTEM,
        "tools": TOOLS,
        "messages": MESSAGES,
        "metadata": {"user_id": '{"device_id":"d","session_id":"s"}'},
        "extra_body": EXTRA_BODY,
        "extra_query": {"beta": "true"},
        "betas": BETAS,
    }


@pytest.fixture
def both(start_gateway: StartGateway, upstream_server: tuple[FakeUpstream, str]) -> RunningGateway:
    """The demo model (translated) and Claude models on the fake's Messages API (native)."""
    return start_gateway(model_list=anthropic_routes(upstream_server[1]), demo_model=True)


async def test_translated_the_default_request_is_answered_and_message_start_reports_the_charge(
    both: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with anthropic_client(both, api_key=org.token) as client:
        events = await client.beta.messages.create(**default_request(DEMO), stream=True)
        seen = [event async for event in events]
    start, *_, delta, stop = seen
    assert (start.type, delta.type, stop.type) == ("message_start", "message_delta", "message_stop")
    text = "".join(
        event.delta.text
        for event in seen
        if event.type == "content_block_delta" and event.delta.type == "text_delta"
    )
    assert text.startswith("Hello from the SPU Gateway demo model.")
    assert text.endswith("You said: say hello")
    [record] = await wait_for_records(store, org.org_id, 1)
    assert start.message.usage.input_tokens == delta.usage.input_tokens
    assert record.details.prompt_tokens == start.message.usage.input_tokens
    assert record.details.completion_tokens == delta.usage.output_tokens > 0
    assert record.details.operation == "messages"


async def test_native_the_default_request_reaches_the_upstream_as_it_was_sent(
    both: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)
    async with anthropic_client(both, api_key=org.token) as client:
        message = await client.beta.messages.create(**default_request(SONNET))
    assert message.content[0].type == "text" and message.content[0].text == DEFAULT_REPLY
    [seen] = upstream.requests
    assert seen.path == "/v1/messages"
    assert seen.body["messages"] == MESSAGES
    assert seen.body["tools"] == TOOLS
    assert {name: seen.body[name] for name in EXTRA_BODY} == EXTRA_BODY
    assert seen.headers["anthropic-beta"] == ",".join(BETAS)
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.prompt_tokens == upstream.knobs.prompt_tokens


async def test_every_anthropic_answer_carries_request_id_and_the_sdk_reads_it(
    both: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with anthropic_client(both, api_key=org.token) as client:
        raw = await client.messages.with_raw_response.create(
            model=DEMO, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert raw.headers["request-id"] == raw.headers["x-request-id"]
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.request_id == raw.headers["request-id"]

    async with anthropic_client(both, api_key="spu_not_a_token") as client:
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await client.messages.create(
                model=DEMO, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )
    assert refused.value.request_id is not None
    assert refused.value.request_id == refused.value.response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/", "/api/hello"])
async def test_the_probes_agents_send_first_are_answered(
    both: RunningGateway, path: str, store: LedgerStore
) -> None:
    async with httpx.AsyncClient(base_url=both.url) as client:
        head = await client.head(path)
        get = await client.get(path)
        chat = await client.post("/v1/chat/completions", json={})
    assert head.status_code == get.status_code == 200
    assert get.json()["status"] == "ok"
    assert "request-id" not in chat.headers and "x-request-id" in chat.headers
