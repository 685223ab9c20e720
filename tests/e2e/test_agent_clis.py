"""The real Codex and Claude Code CLIs against the gateway, each model call metered exactly once.

Codex runs ``codex exec --skip-git-repo-check "say hello"`` with the README's
custom provider (``wire_api = "responses"``) on the demo model (translated to
Chat Completions), on a model whose upstream serves the Responses API (relayed
as it is) and on a Claude model (translated to Messages); Claude Code
runs ``claude -p "say hello" --output-format json`` without ``--bare`` (its
default request: a mid-conversation system message, adaptive thinking,
context management, deferred tools) on the demo model and on a native
``anthropic`` route to the fake. The CLIs are the pinned ones the test command
installs (``tests/agents``), run by ``tests/e2e/agent_clis.py``: isolated
homes, only the environment each needs, bounded in time.

"Exactly once" is checked from both ends: the calls the gateway served on the
protocol's route (``/metrics``) or the fake upstream received, against the
org's own ``/v1/usage`` — one record per call, the right operation, tokens
above zero.
"""

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ledger import LedgerStore
from ledger.verify import verify
from proxy.upstream.demo import DEMO_REPLY
from tests.e2e.agent_clis import CliRunner, claude, codex
from tests.e2e.anthropic_support import SONNET
from tests.e2e.responses_support import NATIVE
from tests.e2e.support import Org, RunningGateway, wait_for_no_holds
from tests.fakes.upstream import DEFAULT_REPLY, FakeUpstream

__all__ = ["claude", "codex"]

DEMO = "spu-demo"
PROMPT = "say hello"
DEMO_ANSWER = DEMO_REPLY + PROMPT


async def served_calls(gateway: RunningGateway, route: str) -> int:
    """How many requests the gateway answered on ``route``, by its own metrics."""
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        text = (await client.get("/metrics")).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "spu_requests"
            for sample in family.samples
            if sample.name == "spu_requests_total" and sample.labels["route"] == route
        )
    )


async def usage(gateway: RunningGateway, org: Org) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        answer = await client.get("/v1/usage", headers={"authorization": f"Bearer {org.token}"})
    answer.raise_for_status()
    records: list[dict[str, Any]] = answer.json()["data"]
    return records


async def assert_metered_once_per_call(
    gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    *,
    calls: int,
    model: str,
    operation: str,
) -> None:
    assert calls >= 1
    assert await wait_for_no_holds(store, org.org_id) == 0
    records = await usage(gateway, org)
    assert len(records) == calls, records
    for record in records:
        assert (record["model"], record["operation"], record["status"]) == (model, operation, "ok")
        assert record["prompt_tokens"] > 0 and record["completion_tokens"] > 0
    _, violations = await verify(store)
    assert violations == []


@pytest.mark.parametrize(
    ("model", "answer"),
    [(DEMO, DEMO_ANSWER), (NATIVE, DEFAULT_REPLY), (SONNET, DEFAULT_REPLY)],
    ids=["demo, to chat", "relayed as it is", "claude, to messages"],
)
async def test_codex_exec_prints_the_models_answer_and_each_call_is_metered_once(
    model: str,
    answer: str,
    codex: CliRunner,
    agents_gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
) -> None:
    run = await codex(base_url=agents_gateway.url, token=org.token, model=model, prompt=PROMPT)
    assert run.returncode == 0, run.describe()
    assert run.stdout.strip() == answer, run.describe()
    calls = await served_calls(agents_gateway, "/v1/responses")
    await assert_metered_once_per_call(
        agents_gateway, org, store, calls=calls, model=model, operation="responses"
    )


async def test_claude_code_default_request_on_the_demo_is_answered_and_metered_once(
    claude: CliRunner, agents_gateway: RunningGateway, org: Org, store: LedgerStore
) -> None:
    run = await claude(base_url=agents_gateway.url, token=org.token, model=DEMO, prompt=PROMPT)
    assert run.returncode == 0, run.describe()
    result = run.json()
    assert result["is_error"] is False, run.describe()
    assert result["result"] == DEMO_ANSWER
    calls = await served_calls(agents_gateway, "/v1/messages")
    await assert_metered_once_per_call(
        agents_gateway, org, store, calls=calls, model=DEMO, operation="messages"
    )


async def test_claude_code_default_request_on_a_native_anthropic_route_is_metered_once(
    claude: CliRunner,
    agents_gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
) -> None:
    run = await claude(base_url=agents_gateway.url, token=org.token, model=SONNET, prompt=PROMPT)
    assert run.returncode == 0, run.describe()
    result = run.json()
    assert result["is_error"] is False, run.describe()
    assert result["result"] == DEFAULT_REPLY
    sent = [seen for seen in upstream.requests if seen.path == "/v1/messages"]
    # Its default request reaches a native upstream as it was sent, fields and betas and all.
    assert sent[0].body["thinking"]["type"] == "adaptive"
    assert "context_management" in sent[0].body and "output_config" in sent[0].body
    assert "context-management-2025-06-27" in sent[0].headers["anthropic-beta"]
    await assert_metered_once_per_call(
        agents_gateway, org, store, calls=len(sent), model=SONNET, operation="messages"
    )
