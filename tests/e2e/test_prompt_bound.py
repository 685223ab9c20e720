"""A call is held for its prompt's cheap bound, and counted exactly only when that is refused.

The expected figures are worked out here: the exact count the way OpenAI's
cookbook counts chat messages (with tiktoken directly), the bound from UTF-8
byte lengths, and every price from the configured rates.
"""

import re
from decimal import Decimal

import openai
import pytest

from ledger import LedgerStore
from pricing.tokens import get_encoding
from tests.e2e.support import (
    CHAT_MODEL,
    Org,
    RunningGateway,
    affordable_output_tokens,
    expected_units,
    new_org,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.upstream import DEFAULT_REPLY, FakeUpstream, reply_pieces

MAX_TOKENS = 200
PROSE = (
    "Metering proxies hold credit before a call and settle it afterwards; "
    "the hold must cover the worst case, while a refusal must state exact figures. "
) * 40
MESSAGES = [{"role": "user", "content": PROSE}]
O200K = get_encoding("o200k_base")  # gpt-4o-mini's encoding


def cookbook_tokens() -> int:
    """3 to prime the reply, 3 for the message, then its role's and content's tokens."""
    return 3 + 3 + len(O200K.encode("user")) + len(O200K.encode(PROSE))


def byte_bound() -> int:
    return 3 + 3 + len(b"user") + len(PROSE.encode())


async def org_with(store: LedgerStore, units: int) -> Org:
    org = await new_org(store, spus=0)
    await store.grant(org.org_id, units, "prompt bound test", f"grant-{org.org_id}")
    return org


async def held_for_a_stream(gateway: RunningGateway, org: Org, max_tokens: int) -> int:
    """Units the gateway held for a streamed call (its ``x-spu-held``), once the stream is read."""
    async with gateway.client(org.token) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model=CHAT_MODEL, messages=MESSAGES, max_tokens=max_tokens, stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in raw.parse()])
    assert text == DEFAULT_REPLY
    return int(Decimal(raw.headers["x-spu-held"]) * 1_000_000)


def test_the_prompt_makes_the_bound_and_the_count_differ() -> None:
    assert byte_bound() > 3 * cookbook_tokens()


async def test_an_affordable_bound_is_what_is_held(
    gateway: RunningGateway, store: LedgerStore
) -> None:
    org = await org_with(store, expected_units(byte_bound(), MAX_TOKENS))
    assert await held_for_a_stream(gateway, org, MAX_TOKENS) == expected_units(
        byte_bound(), MAX_TOKENS
    )
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.prompt_tokens == 17  # settled at the provider's reported usage


async def test_a_refused_bound_is_held_again_at_the_exact_count_when_that_fits(
    gateway: RunningGateway, store: LedgerStore, upstream: FakeUpstream
) -> None:
    exact_units = expected_units(cookbook_tokens(), MAX_TOKENS)
    bound_units = expected_units(byte_bound(), MAX_TOKENS)
    org = await org_with(store, (exact_units + bound_units) // 2)
    assert await held_for_a_stream(gateway, org, MAX_TOKENS) == exact_units
    assert len(upstream.requests) == 1
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.charged_units == expected_units(17, len(reply_pieces(DEFAULT_REPLY)))
    assert await wait_for_no_holds(store, org.org_id) == 0


async def test_a_402_when_even_the_exact_count_is_refused_gives_the_exact_figures(
    gateway: RunningGateway, store: LedgerStore, upstream: FakeUpstream
) -> None:
    exact_units = expected_units(cookbook_tokens(), MAX_TOKENS)
    available = exact_units - 1
    org = await org_with(store, available)
    async with gateway.client(org.token) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS
            )
    error = caught.value
    assert error.status_code == 402
    body = error.body
    assert isinstance(body, dict)
    found = re.search(r"\((\d+) prompt tokens \+ up to (\d+) output tokens\)", error.message)
    assert found is not None
    assert (int(found.group(1)), int(found.group(2))) == (cookbook_tokens(), MAX_TOKENS)
    assert Decimal(str(body["needed_spus"])) * 1_000_000 == exact_units
    assert Decimal(str(body["available_spus"])) * 1_000_000 == available
    affordable = affordable_output_tokens(available, cookbook_tokens())
    assert body["max_affordable_tokens"] == affordable == MAX_TOKENS - 1
    assert list(upstream.requests) == []
    assert (await store.balance(org.org_id)).held_units == 0

    assert await held_for_a_stream(gateway, org, affordable) == expected_units(
        cookbook_tokens(), affordable
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_whose_usage_is_not_reported_pays_for_the_exact_prompt_count(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.knobs.report_usage = False
    async with gateway.client(org.token) as client:
        if stream:
            chunks = await client.chat.completions.create(
                model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True
            )
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in chunks])
        else:
            reply = await client.chat.completions.create(
                model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS
            )
            text = reply.choices[0].message.content or ""
    assert text == DEFAULT_REPLY
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.prompt_tokens == cookbook_tokens()
    assert record.details.completion_tokens == len(O200K.encode(DEFAULT_REPLY))
    assert record.charged_units == expected_units(
        cookbook_tokens(), len(O200K.encode(DEFAULT_REPLY))
    )
