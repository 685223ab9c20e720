"""A Claude Code session replayed against the gateway: every call metered exactly once.

The sequence is the one Claude Code sends for one prompt that runs a tool:
a one-token quota probe and a title request on the small model, a token count
of the tool set, then the main agent turn streamed with cached system blocks
and tools (it answers with a tool call), the follow-up turn carrying the tool
result (read back from the prompt cache), and a streamed summary on the small
model. Claude Code uses the beta Messages endpoint (``?beta=true``) and sends
its ``anthropic-beta`` flags on every call.
"""

from dataclasses import dataclass
from typing import Any

import pytest

from ledger import LedgerStore, UsageRecord, spus_to_units
from ledger.verify import verify
from tests.e2e.anthropic_support import (
    HAIKU,
    SONNET,
    UPSTREAM_KEY,
    UPSTREAM_KEY_ENV,
    anthropic_client,
    anthropic_routes,
    assert_charged,
)
from tests.e2e.support import (
    Org,
    StartGateway,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.upstream import FakeUpstream, Knobs, reply_pieces

BETAS = [
    "claude-code-20250219",
    "interleaved-thinking-2025-05-14",
    "fine-grained-tool-streaming-2025-05-14",
    "prompt-caching-2024-07-31",
]
CLI_HEADERS = {
    "x-app": "cli",
    "user-agent": "claude-cli/2.0.0 (external, cli)",
    "anthropic-dangerous-direct-browser-access": "true",
}
SYSTEM = [
    {
        "type": "text",
        "text": "You are Claude Code, Anthropic's official CLI for Claude.",
        "cache_control": {"type": "ephemeral"},
    },
    {
        "type": "text",
        "text": "You are an interactive CLI tool that helps users with software engineering tasks."
        " Use the tools available to you. " * 40,
        "cache_control": {"type": "ephemeral"},
    },
]
TOOLS = [
    {
        "name": "Bash",
        "description": "Executes a given bash command in a persistent shell session.",
        "input_schema": {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command to execute"},
                "timeout": {"type": "number"},
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    },
    {
        "name": "Read",
        "description": "Reads a file from the local filesystem.",
        "input_schema": {
            "type": "object",
            "properties": {"file_path": {"type": "string"}},
            "required": ["file_path"],
        },
    },
]
METADATA = {"user_id": "user_0123456789abcdef_account__session_5f2d"}
PROMPT = {
    "role": "user",
    "content": [
        {"type": "text", "text": "<system-reminder>This is a reminder.</system-reminder>"},
        {"type": "text", "text": "List the files here.", "cache_control": {"type": "ephemeral"}},
    ],
}


@dataclass(frozen=True, slots=True)
class Turn:
    """One metered call of the session: which model, what the fake reported, its request id."""

    model: str
    knobs: Knobs
    request_id: str


async def test_claude_code_session_is_metered_once_per_call_and_the_ledger_verifies(
    start_gateway: StartGateway,
    upstream_server: tuple[FakeUpstream, str],
    upstream: FakeUpstream,
    org: Org,
    store: LedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)
    gateway = start_gateway(model_list=anthropic_routes(upstream_server[1]))
    turns: list[Turn] = []
    common: dict[str, Any] = {
        "betas": BETAS,
        "extra_headers": CLI_HEADERS,
        "extra_query": {"beta": "true"},
    }

    async with anthropic_client(gateway, api_key=org.token) as client:
        messages = client.beta.messages

        async def plain(knobs: Knobs, **request: Any) -> Any:
            upstream.knobs = knobs
            raw = await messages.with_raw_response.create(**request, **common)
            turns.append(Turn(request["model"], knobs, raw.headers["x-request-id"]))
            return await raw.parse()

        async def streamed(knobs: Knobs, **request: Any) -> Any:
            upstream.knobs = knobs
            async with messages.stream(**request, **common) as stream:
                final = await stream.get_final_message()
                turns.append(Turn(request["model"], knobs, stream.response.headers["x-request-id"]))
            return final

        await plain(
            Knobs(prompt_tokens=8, reply="ok"),
            model=HAIKU,
            max_tokens=1,
            messages=[{"role": "user", "content": "quota"}],
            metadata=METADATA,
        )
        await plain(
            Knobs(prompt_tokens=90, reply='{"isNewTopic": true, "title": "List files"}'),
            model=HAIKU,
            max_tokens=512,
            system=[{"type": "text", "text": "Analyze if this message indicates a new topic."}],
            messages=[{"role": "user", "content": "List the files here."}],
            metadata=METADATA,
        )
        upstream.knobs = Knobs(prompt_tokens=4321)
        counted = await messages.count_tokens(
            model=SONNET, messages=[PROMPT], system=SYSTEM, tools=TOOLS, **common
        )
        assert counted.input_tokens == 4321
        first = await streamed(
            Knobs(
                prompt_tokens=6,
                cache_creation_input_tokens=14_000,
                reply="I'll list the files.",
                tool_use=("Bash", {"command": "ls -la", "timeout": 120000}),
            ),
            model=SONNET,
            max_tokens=32_000,
            system=SYSTEM,
            tools=TOOLS,
            messages=[PROMPT],
            metadata=METADATA,
            thinking={"type": "enabled", "budget_tokens": 4_000},
        )
        assert first.stop_reason == "tool_use"
        tool_call = first.content[-1]
        assert (tool_call.name, tool_call.input) == (
            "Bash",
            {"command": "ls -la", "timeout": 120000},
        )
        await streamed(
            Knobs(
                prompt_tokens=40,
                cache_creation_input_tokens=350,
                cache_read_input_tokens=14_000,
                reply="There are three files: README.md, setup.py and src.",
            ),
            model=SONNET,
            max_tokens=32_000,
            system=SYSTEM,
            tools=TOOLS,
            messages=[
                PROMPT,
                {"role": "assistant", "content": [block.to_dict() for block in first.content]},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": tool_call.id,
                            "content": "README.md\nsetup.py\nsrc",
                            "cache_control": {"type": "ephemeral"},
                        }
                    ],
                },
            ],
            metadata=METADATA,
            thinking={"type": "enabled", "budget_tokens": 4_000},
        )
        await streamed(
            Knobs(prompt_tokens=120, reply="Listed the project files."),
            model=HAIKU,
            max_tokens=512,
            messages=[{"role": "user", "content": "Summarize: ls -la printed three files."}],
            metadata=METADATA,
        )

    seen = list(upstream.requests)
    assert [request.path for request in seen] == [
        "/v1/messages",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/messages",
        "/v1/messages",
        "/v1/messages",
    ]
    for request in seen:
        assert set(BETAS) <= set(request.headers["anthropic-beta"].split(","))
        assert request.headers["x-api-key"] == UPSTREAM_KEY
        assert org.token not in request.headers.values()
    assert seen[3].body["thinking"] == {"type": "enabled", "budget_tokens": 4_000}
    assert seen[4].body["messages"][2]["content"][0]["tool_use_id"] == tool_call.id

    records = await wait_for_records(store, org.org_id, len(turns))
    assert await wait_for_no_holds(store, org.org_id) == 0
    by_request: dict[str, UsageRecord] = {record.request_id: record for record in records}
    assert len(records) == len(turns) == 5
    assert set(by_request) == {turn.request_id for turn in turns}
    for turn in turns:
        record = by_request[turn.request_id]
        knobs = turn.knobs
        assert (record.details.model, record.details.status) == (turn.model, "ok")
        assert (record.details.source, record.details.operation) == ("anthropic", "messages")
        assert_charged(
            record,
            turn.model,
            input_tokens=knobs.prompt_tokens,
            output_tokens=_output_tokens(knobs),
            cache_creation_input_tokens=knobs.cache_creation_input_tokens,
            cache_read_input_tokens=knobs.cache_read_input_tokens,
        )
    balance = await store.balance(org.org_id)
    charged = sum(record.charged_units for record in records)
    assert balance.available_units == spus_to_units(100) - charged
    checked, violations = await verify(store)
    assert checked >= 1 and violations == []


def _output_tokens(knobs: Knobs) -> int:
    """The fake reports one output token per piece of its text reply."""
    return len(reply_pieces(knobs.reply))
