"""The OpenAI Agents SDK (``openai-agents``) on the demo model: ``Runner.run`` via /v1/responses.

Its default model speaks the Responses API; pointed at the gateway with the
org token it runs a turn and is metered once. Tracing is disabled so that it
never tries to export traces to OpenAI.
"""

from collections.abc import Iterator

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled

from ledger import LedgerStore
from proxy.upstream.demo import DEMO_REPLY
from tests.e2e.support import (
    Org,
    RunningGateway,
    StartGateway,
    wait_for_no_holds,
    wait_for_records,
)

DEMO = "spu-demo"


@pytest.fixture
def untraced() -> Iterator[None]:
    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


async def test_runner_run_answers_with_the_demo_and_is_metered_once(
    untraced: None, start_gateway: StartGateway, org: Org, store: LedgerStore
) -> None:
    gateway: RunningGateway = start_gateway(model_list=[], demo_model=True)
    async with gateway.client(org.token) as client:
        agent = Agent(
            name="assistant",
            instructions="You answer briefly.",
            model=OpenAIResponsesModel(model=DEMO, openai_client=client),
        )
        result = await Runner.run(agent, "say hello")
    assert result.final_output == DEMO_REPLY + "say hello"
    [record] = await wait_for_records(store, org.org_id, 1)
    assert (record.details.model, record.details.operation) == (DEMO, "responses")
    assert record.details.prompt_tokens > 0 and record.details.completion_tokens > 0
    assert await wait_for_no_holds(store, org.org_id) == 0
