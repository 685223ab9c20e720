"""An exception no route expected: a 500 in the client's own shape, logged with the request id,
and the keep-alive connection it came on still serves the next request."""

import logging
from pathlib import Path

import httpx
import pytest

from ledger.sqlite import SqliteLedger
from tests.e2e.support import CHAT_MODEL, Org, StartGateway
from tests.fakes.ledger import SwitchableLedger
from tests.fakes.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Hello"}]


class BrokenHolds(SwitchableLedger):
    """A ledger whose holds fail with an exception nothing in the gateway expects."""

    async def hold(self, *args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug in the ledger")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": CHAT_MODEL, "messages": MESSAGES}),
        ("/v1/messages", {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 16}),
    ],
)
async def test_an_unexpected_exception_answers_500_in_the_clients_shape_and_keeps_the_connection(
    start_gateway: StartGateway,
    ledger_path: Path,
    org: Org,
    upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    path: str,
    body: dict[str, object],
) -> None:
    gateway = start_gateway(ledger=BrokenHolds(SqliteLedger(ledger_path)))
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"authorization": f"Bearer {org.token}", "x-api-key": org.token}
    with caplog.at_level(logging.ERROR, logger="spu.errors"):
        async with httpx.AsyncClient(base_url=gateway.url, headers=headers, limits=limits) as http:
            failed = await http.post(path, json=body)
            following = await http.get("/v1/models")
            connections = {
                answer.extensions["network_stream"].get_extra_info("client_addr")
                for answer in (failed, following)
            }

    assert failed.status_code == 500
    request_id = failed.headers["x-request-id"]
    if path == "/v1/messages":
        assert failed.json() == {
            "type": "error",
            "error": {"type": "api_error", "message": failed.json()["error"]["message"]},
        }
        message = failed.json()["error"]["message"]
    else:
        error = failed.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "api_error",
            "internal_error",
            None,
        )
        message = error["message"]
    assert request_id in message
    [logged] = [record for record in caplog.records if record.name == "spu.errors"]
    assert request_id in logged.getMessage()
    assert logged.exc_info is not None and logged.exc_info[0] is ZeroDivisionError

    assert following.status_code == 200
    assert len(connections) == 1, "the connection was closed after the 500"
    assert list(upstream.requests) == []
