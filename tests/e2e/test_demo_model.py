"""The demo model through the gateway, as the official SDKs see it: bounded, streamed, metered."""

from decimal import ROUND_CEILING, Decimal

import pytest

from ledger import LedgerStore
from tests.e2e.anthropic_support import anthropic_client, ask
from tests.e2e.support import (
    MARKUP,
    USD_PER_SPU,
    Org,
    RunningGateway,
    StartGateway,
    wait_for_no_holds,
    wait_for_records,
)

DEMO = "spu-demo"
INPUT_USD_PER_TOKEN = Decimal("0.0000005")
OUTPUT_USD_PER_TOKEN = Decimal("0.0000015")
"""The demo model's prices, as the README documents them."""


def demo_units(prompt_tokens: int, completion_tokens: int) -> int:
    cost_usd = prompt_tokens * INPUT_USD_PER_TOKEN + completion_tokens * OUTPUT_USD_PER_TOKEN
    units = cost_usd * (1 + MARKUP) / USD_PER_SPU * 1_000_000
    return int(units.to_integral_value(ROUND_CEILING))


@pytest.fixture
def demo(start_gateway: StartGateway) -> RunningGateway:
    return start_gateway(model_list=[], demo_model=True)


async def test_chat_is_cut_at_max_tokens_reports_length_and_charges_no_more(
    demo: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with demo.client(org.token) as client:
        completion = await client.chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": "Hello there"}], max_tokens=30
        )
    [choice] = completion.choices
    assert choice.finish_reason == "length"
    assert choice.message.refusal is None and choice.logprobs is None
    assert completion.usage is not None and completion.usage.completion_tokens == 30
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.completion_tokens == 30
    assert record.charged_units == demo_units(completion.usage.prompt_tokens, 30)
    assert await wait_for_no_holds(store, org.org_id) == 0


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_anthropic_sdk_sees_max_tokens_as_the_stop_reason(
    stream: bool, demo: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with anthropic_client(demo, api_key=org.token) as client:
        message = await ask(
            client,
            stream,
            model=DEMO,
            max_tokens=5,
            messages=[{"role": "user", "content": "Hello there"}],
        )
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.completion_tokens == 5
    assert record.details.prompt_tokens == message.usage.input_tokens


async def test_embeddings_come_back_as_floats_from_the_sdks_default_base64(
    demo: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with demo.client(org.token) as client:
        texts = await client.embeddings.create(model=DEMO, input=["a fox", "a dog"])
        tokens = await client.embeddings.create(model=DEMO, input=[1, 2, 3])
    assert [item.embedding for item in texts.data] == [[0.0, 0.5, 1.0]] * 2
    assert [item.embedding for item in tokens.data] == [[0.0, 0.5, 1.0]]
    assert tokens.usage.prompt_tokens == 3
    records = await wait_for_records(store, org.org_id, 2)
    assert sorted(record.details.prompt_tokens for record in records) == sorted(
        [texts.usage.prompt_tokens, 3]
    )


async def test_legacy_completions_stream_chunks_the_sdk_can_read(
    demo: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with demo.client(org.token) as client:
        plain = await client.completions.create(model=DEMO, prompt="Hello there", max_tokens=12)
        stream = await client.completions.create(
            model=DEMO, prompt="Hello there", max_tokens=12, stream=True
        )
        chunks = [chunk async for chunk in stream]
    texts = [chunk.choices[0].text for chunk in chunks if chunk.choices]
    assert len(texts) > 2
    assert "".join(texts) == plain.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"
    records = await wait_for_records(store, org.org_id, 2)
    assert [record.details.completion_tokens for record in records] == [12, 12]
    assert await wait_for_no_holds(store, org.org_id) == 0
