"""The official OpenAI SDK against the gateway: answers relayed, usage metered to the unit."""

import json
from decimal import Decimal

import openai
import pytest

from ledger import LedgerStore, format_spus, spus_to_units
from pricing import cost_map_path
from tests.e2e.support import (
    CHAT_MODEL,
    EMBEDDING_MODEL,
    MARKUP,
    USD_PER_SPU,
    Org,
    RunningGateway,
    expected_cost_pico_usd,
    expected_units,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.upstream import DEFAULT_REPLY, FakeUpstream, reply_pieces

MESSAGES = [{"role": "user", "content": "Say something about foxes."}]
PIECES = reply_pieces(DEFAULT_REPLY)


async def test_plain_chat_relays_the_answer_and_charges_exactly_the_reported_usage(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.prompt_tokens = 1234
    upstream.knobs.completion_tokens = 567
    async with gateway.client(org.token) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model=CHAT_MODEL, messages=MESSAGES
        )
    completion = raw.parse()
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.usage is not None and completion.usage.prompt_tokens == 1234

    charged = expected_units(1234, 567)
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.request_id == raw.headers["x-request-id"]
    assert record.charged_units == charged
    assert record.split.granted_units == charged
    details = record.details
    assert (details.model, details.provider, details.key_id) == (CHAT_MODEL, "openai", org.key_id)
    assert (details.prompt_tokens, details.completion_tokens, details.total_tokens) == (
        1234,
        567,
        1801,
    )
    assert details.cost_pico_usd == expected_cost_pico_usd(1234, 567)
    assert details.status == "ok"
    assert raw.headers["x-spu-charged"] == format_spus(charged)
    assert raw.headers["x-spu-remaining"] == format_spus(spus_to_units(Decimal(100)) - charged)
    assert await wait_for_no_holds(store, org.org_id) == 0


async def test_upstream_gets_the_provider_model_and_key_never_the_clients_token(
    gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", "sk-upstream-secret")
    async with gateway.client(org.token) as client:
        await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    [seen] = upstream.requests
    assert seen.headers["authorization"] == "Bearer sk-upstream-secret"
    assert org.token not in json.dumps(seen.headers)
    assert seen.body["model"] == CHAT_MODEL
    assert seen.body["messages"] == MESSAGES


async def test_stream_without_include_usage_shows_no_usage_chunk_but_is_metered(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with gateway.client(org.token) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model=CHAT_MODEL, messages=MESSAGES, stream=True
        )
        chunks = [chunk async for chunk in raw.parse()]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == DEFAULT_REPLY
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert upstream.requests[0].body["stream_options"] == {"include_usage": True}
    assert Decimal(raw.headers["x-spu-held"]) > 0

    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.request_id == raw.headers["x-request-id"]
    assert (record.details.prompt_tokens, record.details.completion_tokens) == (17, len(PIECES))
    assert record.charged_units == expected_units(17, len(PIECES))
    assert record.details.status == "ok"
    assert await wait_for_no_holds(store, org.org_id) == 0


async def test_stream_with_include_usage_ends_with_the_usage_chunk(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with gateway.client(org.token) as client:
        stream = await client.chat.completions.create(
            model=CHAT_MODEL,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (17, len(PIECES))
    assert all(chunk.usage is None for chunk in chunks[:-1])
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.charged_units == expected_units(17, len(PIECES))


async def test_stream_whose_upstream_reports_no_usage_is_counted_with_tiktoken(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    from pricing import count_text_tokens

    upstream.knobs.report_usage = False
    async with gateway.client(org.token) as client:
        stream = await client.chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.completion_tokens == count_text_tokens(text, CHAT_MODEL)
    assert record.details.prompt_tokens > 0
    assert record.charged_units == expected_units(
        record.details.prompt_tokens, record.details.completion_tokens
    )


async def test_legacy_completion_is_metered(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with gateway.client(org.token) as client:
        completion = await client.completions.create(
            model=CHAT_MODEL, prompt="Once upon a time", max_tokens=5
        )
    assert completion.choices[0].text == "".join(PIECES[:5])
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.operation == "completions"
    assert record.charged_units == expected_units(17, 5)


async def test_streamed_legacy_completion_arrives_as_chunks_and_is_metered(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with gateway.client(org.token) as client:
        stream = await client.completions.create(
            model=CHAT_MODEL, prompt="Once upon a time", max_tokens=5, stream=True
        )
        chunks = [chunk async for chunk in stream]
    texts = [choice.text for chunk in chunks for choice in chunk.choices]
    assert "".join(texts) == "".join(PIECES[:5])
    assert len(chunks) == 6
    assert chunks[-1].choices[0].finish_reason == "length"
    assert upstream.requests[0].body["stream_options"] == {"include_usage": True}
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.operation == "completions"
    assert record.charged_units == expected_units(17, 5)


async def test_embeddings_are_relayed_and_priced_from_litellms_cost_map(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.prompt_tokens = 9
    async with gateway.client(org.token) as client:
        result = await client.embeddings.create(model=EMBEDDING_MODEL, input=["one", "two"])
    assert [item.embedding for item in result.data] == [[0.1, 0.2, 0.3]] * 2
    assert upstream.requests[0].body["model"] == EMBEDDING_MODEL

    entry = json.loads(cost_map_path().read_text())[EMBEDDING_MODEL]
    rate = Decimal(str(entry["input_cost_per_token"]))
    units = 9 * rate * (1 + MARKUP) / USD_PER_SPU * 1_000_000
    [record] = await wait_for_records(store, org.org_id, 1)
    assert (record.details.prompt_tokens, record.details.completion_tokens) == (9, 0)
    assert record.details.operation == "embeddings"
    assert record.charged_units == int(units.to_integral_value(rounding="ROUND_CEILING"))


async def test_models_list_shows_only_the_served_models(
    gateway: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with gateway.client(org.token) as client:
        models = [model.id async for model in client.models.list()]
    assert sorted(models) == sorted([CHAT_MODEL, EMBEDDING_MODEL])


async def test_models_list_includes_the_demo_model_when_enabled(
    start_gateway: object, org: Org, store: LedgerStore
) -> None:
    gateway = start_gateway(demo_model=True)  # type: ignore[operator]
    async with gateway.client(org.token) as client:
        models = {model.id async for model in client.models.list()}
    assert models == {CHAT_MODEL, EMBEDDING_MODEL, "spu-demo"}


async def test_a_served_model_is_retrieved_by_name_and_an_unknown_one_is_404(
    gateway: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with gateway.client(org.token) as client:
        model = await client.models.retrieve(CHAT_MODEL)
        with pytest.raises(openai.NotFoundError) as missing:
            await client.models.retrieve("no-such-model")
    assert (model.id, model.object, model.owned_by) == (CHAT_MODEL, "model", "openai")
    assert missing.value.code == "model_not_found"
