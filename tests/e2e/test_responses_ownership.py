"""Stored responses reach only the org that created them: read, listed, continued, deleted.

The upstream (the fake, serving the Responses API itself) keeps every response
not sent with ``store: false``, under the gateway's one key: it would hand any
of them to whoever names the id. The gateway answers another org's request
for that id with the 404 OpenAI gives for an id it does not hold, and the
upstream sees nothing of it.
"""

import httpx
import openai
import pytest

from ledger import LedgerStore
from tests.e2e.anthropic_support import UPSTREAM_KEY
from tests.e2e.responses_support import NATIVE
from tests.e2e.support import Org, RunningGateway, new_org, wait_for_records
from tests.fakes.upstream import DEFAULT_REPLY, FakeUpstream

DEMO = "spu-demo"


@pytest.fixture
async def other(store: LedgerStore) -> Org:
    return await new_org(store)


async def assert_not_found(answer: httpx.Response, response_id: str) -> None:
    assert answer.status_code == 404, answer.text
    error = answer.json()["error"]
    assert error["message"] == f"Response with id '{response_id}' not found."
    assert error["code"] == "response_not_found"


def bearer(org: Org) -> dict[str, str]:
    return {"authorization": f"Bearer {org.token}"}


async def test_the_creating_org_reads_lists_and_deletes_its_response(
    agents_gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with agents_gateway.client(org.token) as client:
        created = await client.responses.create(model=NATIVE, input="Remember this.")
        read = await client.responses.retrieve(created.id)
        items = await client.responses.input_items.list(created.id, limit=5)
        deleted = await client.responses.delete(created.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(created.id)
    assert (read.id, read.output_text) == (created.id, DEFAULT_REPLY)
    assert [item.type for item in items.data] == ["message"]
    assert deleted is None
    seen = [(request.method, request.path) for request in upstream.requests]
    assert seen == [
        ("POST", "/v1/responses"),
        ("GET", f"/v1/responses/{created.id}"),
        ("GET", f"/v1/responses/{created.id}/input_items"),
        ("DELETE", f"/v1/responses/{created.id}"),
    ]
    assert upstream.requests[1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert await store.response_owner(created.id) is None
    [record] = await wait_for_records(store, org.org_id, 1)
    assert record.details.operation == "responses"


async def test_another_org_gets_404_for_every_use_of_the_id_and_the_upstream_sees_none(
    agents_gateway: RunningGateway, org: Org, other: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with agents_gateway.client(org.token) as client:
        created = await client.responses.create(model=NATIVE, input="Mine.")
    before = len(upstream.requests)
    async with httpx.AsyncClient(
        base_url=f"{agents_gateway.url}/v1", headers=bearer(other)
    ) as client:
        for answer in (
            await client.get(f"/responses/{created.id}"),
            await client.get(f"/responses/{created.id}/input_items"),
            await client.delete(f"/responses/{created.id}"),
        ):
            await assert_not_found(answer, created.id)
        continued = await client.post(
            "/responses",
            json={"model": NATIVE, "input": "And then?", "previous_response_id": created.id},
        )
    await assert_not_found(continued, created.id)
    assert continued.json()["error"]["param"] == "previous_response_id"
    assert len(upstream.requests) == before
    assert created.id in upstream.stored_responses
    assert await store.usage_records(other.org_id) == []
    async with agents_gateway.client(org.token) as client:
        assert (await client.responses.retrieve(created.id)).id == created.id


async def test_a_streamed_response_is_the_creators_from_its_first_event(
    agents_gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with agents_gateway.client(org.token) as client:
        async with client.responses.stream(model=NATIVE, input="Stream it.") as events:
            first = await anext(aiter(events))
            assert first.type == "response.created"
            owner = await store.response_owner(first.response.id)
            assert owner is not None
            assert (owner.org_id, owner.model) == (org.org_id, NATIVE)
            final = await events.get_final_response()
        following = await client.responses.create(
            model=NATIVE, input="And then?", previous_response_id=final.id
        )
    assert following.output_text == DEFAULT_REPLY
    assert upstream.requests[-1].body["previous_response_id"] == final.id


async def test_responses_nothing_stores_belong_to_nobody(
    agents_gateway: RunningGateway, org: Org, store: LedgerStore, upstream: FakeUpstream
) -> None:
    async with agents_gateway.client(org.token) as client:
        unstored = await client.responses.create(model=NATIVE, input="Forget it.", store=False)
        translated = await client.responses.create(model=DEMO, input="Hello")
    before = len(upstream.requests)
    async with httpx.AsyncClient(
        base_url=f"{agents_gateway.url}/v1", headers=bearer(org)
    ) as client:
        for response_id in (unstored.id, translated.id, "resp_never_made", "not an id!"):
            await assert_not_found(await client.get(f"/responses/{response_id}"), response_id)
    assert len(upstream.requests) == before
    assert await store.response_owner(unstored.id) is None
    assert await store.response_owner(translated.id) is None
