"""One org, many concurrent streams, credit for only some: no overdraft, nothing lost."""

import asyncio

import openai

from ledger import LedgerStore
from ledger.verify import verify
from pricing import chat_prompt_tokens
from tests.e2e.support import (
    CHAT_MODEL,
    RunningGateway,
    StartGateway,
    expected_units,
    new_org,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.upstream import DEFAULT_REPLY, FakeUpstream, reply_pieces

CALLS = 100
AFFORDABLE_HOLDS = 40
MAX_TOKENS = 1000
MESSAGES = [{"role": "user", "content": "Stream me something."}]


async def one_call(gateway: RunningGateway, client: openai.AsyncOpenAI) -> str:
    try:
        stream = await client.chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, stream=True, max_tokens=MAX_TOKENS
        )
    except openai.APIStatusError as error:
        return f"refused {error.status_code}"
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == DEFAULT_REPLY
    return "accepted"


async def test_100_concurrent_streams_on_credit_for_40_never_overdraw(
    start_gateway: StartGateway, store: LedgerStore, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(max_in_flight_per_org=CALLS + 28)
    upstream.knobs.chunk_delay_s = 0.05
    hold_units = expected_units(chat_prompt_tokens(MESSAGES, CHAT_MODEL).bound, MAX_TOKENS)
    balance_units = AFFORDABLE_HOLDS * hold_units + hold_units // 2
    org = await new_org(store, spus=0)
    await store.grant(org.org_id, balance_units, "concurrency test", f"grant-{org.org_id}")

    async with gateway.client(org.token) as client:
        outcomes = await asyncio.gather(*(one_call(gateway, client) for _ in range(CALLS)))

    accepted = outcomes.count("accepted")
    assert outcomes.count("refused 402") == CALLS - accepted
    assert AFFORDABLE_HOLDS <= accepted < CALLS
    records = await wait_for_records(store, org.org_id, accepted)
    assert len(records) == accepted
    assert len({record.request_id for record in records}) == accepted
    assert all(record.details.status == "ok" for record in records)
    call_units = expected_units(17, len(reply_pieces(DEFAULT_REPLY)))
    assert all(record.charged_units == call_units for record in records)
    assert await wait_for_no_holds(store, org.org_id) == 0
    balance = await store.balance(org.org_id)
    debited = balance_units - balance.account.net_balance_units
    assert debited == accepted * call_units <= balance_units
    _, violations = await verify(store)
    assert violations == []
