"""Every refusal and failure in OpenAI's error shape, and none of them debits a unit."""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from ledger import LedgerStore, spus_to_units
from ledger.sqlite import SqliteLedger
from proxy.settings import ModelRoute
from tests.e2e.support import (
    CHAT_KEY_ENV,
    CHAT_MODEL,
    Org,
    RunningGateway,
    StartGateway,
    expected_units,
    new_org,
    wait_for_no_holds,
    wait_for_records,
)
from tests.fakes.ledger import SwitchableLedger
from tests.fakes.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Hello there."}]
FULL_BALANCE_UNITS = spus_to_units(Decimal(100))


async def assert_nothing_debited(store: LedgerStore, org: Org) -> None:
    assert await wait_for_no_holds(store, org.org_id) == 0
    assert await store.usage_records(org.org_id) == []
    assert (await store.balance(org.org_id)).available_units == FULL_BALANCE_UNITS


def openai_error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    return error


async def test_missing_token_gets_401_in_openai_shape(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES}
        )
    assert response.status_code == 401
    assert openai_error(response)["code"] == "invalid_api_key"


async def test_wrong_token_gets_401_through_the_sdk(
    gateway: RunningGateway, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with gateway.client("spu_not-a-real-token") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert list(upstream.requests) == []


async def test_revoked_token_gets_401(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    await store.revoke_access_key(org.org_id, org.key_id)
    async with gateway.client(org.token) as client:
        with pytest.raises(openai.AuthenticationError, match="revoked"):
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    await assert_nothing_debited(store, org)
    assert list(upstream.requests) == []


async def test_expired_token_gets_401(
    gateway: RunningGateway, store: LedgerStore, upstream: FakeUpstream
) -> None:
    expired = await new_org(store, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    async with gateway.client(expired.token) as client:
        with pytest.raises(openai.AuthenticationError, match="expired"):
            await client.models.list()
    assert list(upstream.requests) == []


def affordable_output_tokens(available_units: int, prompt_tokens: int) -> int:
    """Largest max_tokens whose worst case fits, searched here independently of ``pricing``."""
    tokens = 0
    while expected_units(prompt_tokens, tokens + 1) <= available_units:
        tokens += 1
    return tokens


async def test_insufficient_credit_gets_402_saying_available_needed_and_affordable(
    gateway: RunningGateway, store: LedgerStore, upstream: FakeUpstream
) -> None:
    poor = await new_org(store, spus=Decimal("0.01"))
    async with gateway.client(poor.token) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model=CHAT_MODEL, messages=MESSAGES, max_tokens=1000
            )
    error = caught.value
    assert error.status_code == 402
    body = error.body
    assert isinstance(body, dict)
    assert body["code"] == "insufficient_credits"
    assert body["type"] == "insufficient_quota"
    found = re.search(r"\((\d+) prompt tokens \+ up to 1000 output tokens\)", error.message)
    assert found is not None
    prompt_tokens = int(found.group(1))
    assert body["available_spus"] == "0.01"
    assert Decimal(str(body["needed_spus"])) * 1_000_000 == expected_units(prompt_tokens, 1000)
    affordable = affordable_output_tokens(10_000, prompt_tokens)
    assert body["max_affordable_tokens"] == affordable
    assert f"largest max_tokens you can afford now is {affordable}" in error.message
    assert list(upstream.requests) == []
    assert await store.usage_records(poor.org_id) == []
    assert (await store.balance(poor.org_id)).available_units == 10_000

    async with gateway.client(poor.token) as client:
        await client.chat.completions.create(
            model=CHAT_MODEL, messages=MESSAGES, max_tokens=affordable
        )


@pytest.mark.parametrize("status", [500, 503, 429, 400])
async def test_upstream_error_is_relayed_with_its_status_and_costs_nothing(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream, status: int
) -> None:
    upstream.knobs.fail_status = status
    async with gateway.client(org.token) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert caught.value.status_code == status
    assert caught.value.message.endswith(upstream.knobs.fail_message)
    if status in (429, 503):
        # The fake gave no advice: the gateway adds the SDKs' own first backoff.
        headers = caught.value.response.headers
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "1000")
    await assert_nothing_debited(store, org)


async def test_streamed_call_to_a_failing_upstream_costs_nothing(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    upstream.knobs.fail_status = 500
    async with gateway.client(org.token) as client:
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True)
    await assert_nothing_debited(store, org)


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_timeout_gets_504_and_costs_nothing(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.knobs.headers_delay_s = gateway.settings.upstream_timeout_s + 0.5
    async with gateway.client(org.token) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=stream)
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"
    await assert_nothing_debited(store, org)


async def test_unreachable_upstream_gets_502_and_costs_nothing(
    start_gateway: StartGateway, org: Org, store: LedgerStore, unused_port_url: str
) -> None:
    route = ModelRoute(
        model_name=CHAT_MODEL,
        provider_model=CHAT_MODEL,
        api_base=f"{unused_port_url}/v1",
        input_cost_per_token=Decimal("0.000001"),
        output_cost_per_token=Decimal("0.000001"),
    )
    gateway = start_gateway(model_list=[route])
    async with gateway.client(org.token) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert caught.value.status_code == 502
    await assert_nothing_debited(store, org)


@pytest.fixture
def unused_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    "body",
    [b'{"model": "gpt-4o-mini", "messages": [', b"", b"[1, 2]", b"\xff\xfe"],
    ids=["truncated", "empty", "not-an-object", "not-utf8"],
)
async def test_malformed_json_gets_400(
    gateway: RunningGateway, org: Org, store: LedgerStore, body: bytes
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/v1/chat/completions",
            content=body,
            headers={"authorization": f"Bearer {org.token}", "content-type": "application/json"},
        )
    assert response.status_code == 400
    error = openai_error(response)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_json"
    await assert_nothing_debited(store, org)


async def test_missing_messages_gets_400_naming_the_parameter(
    gateway: RunningGateway, org: Org, store: LedgerStore
) -> None:
    async with gateway.client(org.token) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model=CHAT_MODEL, messages=[])
    assert caught.value.param == "messages"


async def test_unknown_model_gets_404(
    gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with gateway.client(org.token) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="gpt-nonexistent", messages=MESSAGES)
    assert caught.value.code == "model_not_found"
    assert "gpt-nonexistent" in caught.value.message
    assert list(upstream.requests) == []


async def test_a_model_without_its_upstream_key_gets_503_and_is_never_forwarded(
    gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CHAT_KEY_ENV)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/v1/chat/completions",
            json={"model": CHAT_MODEL, "messages": MESSAGES},
            headers={"authorization": f"Bearer {org.token}"},
        )
    error = openai_error(response)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "3600"
    assert (error["type"], error["code"]) == ("server_error", "upstream_key_missing")
    assert CHAT_MODEL in str(error["message"]) and CHAT_KEY_ENV not in str(error["message"])
    assert list(upstream.requests) == []
    await assert_nothing_debited(store, org)

    monkeypatch.setenv(CHAT_KEY_ENV, "sk-set-at-last")
    async with gateway.client(org.token) as client:
        await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert upstream.requests[-1].headers["authorization"] == "Bearer sk-set-at-last"


async def test_oversized_body_gets_413_before_anything_else(
    start_gateway: StartGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(max_body_bytes=4096)
    big = [{"role": "user", "content": "x" * 5000}]
    async with gateway.client(org.token) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=CHAT_MODEL, messages=big)
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/v1/chat/completions",
            content=chunked(),
            headers={"authorization": "Bearer whatever"},
        )
    assert response.status_code == 413
    assert openai_error(response)["code"] == "request_too_large"
    assert list(upstream.requests) == []
    await assert_nothing_debited(store, org)


async def test_requests_beyond_the_orgs_in_flight_cap_get_429(
    start_gateway: StartGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    gateway = start_gateway(max_in_flight_per_org=2)
    upstream.knobs.chunk_delay_s = 0.05
    async with gateway.client(org.token) as client:
        streams = [
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True)
            for _ in range(2)
        ]
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        assert caught.value.code == "too_many_in_flight"
        # No call has ended yet: the assumed mean call (1 s) over the 2 calls in flight.
        headers = caught.value.response.headers
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "500")
        for stream in streams:
            assert [chunk async for chunk in stream]
        await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert len(upstream.requests) == 3


async def test_ledger_outage_gets_503_and_nothing_is_forwarded(
    start_gateway: StartGateway,
    ledger_path: Path,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
) -> None:
    ledger = SwitchableLedger(SqliteLedger(ledger_path))
    gateway = start_gateway(ledger=ledger, token_cache_ttl_s=60.0)
    async with gateway.client(org.token) as client, httpx.AsyncClient() as http:
        await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        await wait_for_records(store, org.org_id, 1)
        ledger.down = True
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
        assert caught.value.status_code == 503
        assert caught.value.code == "ledger_unavailable"
        assert int(caught.value.response.headers["retry-after"]) >= 1
        assert len(upstream.requests) == 1
        readiness = await http.get(f"{gateway.url}/readyz")
        assert readiness.status_code == 503
        assert int(readiness.headers["retry-after"]) >= 1
        assert (await http.get(f"{gateway.url}/healthz")).status_code == 200

        other = await new_org(store)
        async with gateway.client(other.token) as other_client:
            with pytest.raises(openai.APIStatusError) as uncached:
                await other_client.models.list()
        assert uncached.value.status_code == 503

        ledger.down = False
        assert (await http.get(f"{gateway.url}/readyz")).status_code == 200
        await client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert len(await wait_for_records(store, org.org_id, 2)) == 2
