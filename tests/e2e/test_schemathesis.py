"""schemathesis over the gateway's own ``/openapi.json``: no generated request gets a 5xx.

Every documented operation is fuzzed (the OpenAI and Anthropic routes with their request
schemas, the admin API, the org's own routes), the admin routes with the admin token and
every other route with an org's token, so requests get past authentication into the code
that reads them. The one server error allowed is the documented 503
``billing_not_configured`` in local-only mode, of the ``/billing`` routes and of the PUT
that turns auto-recharge on.

Bounded for CI's two cores: ``MAX_EXAMPLES`` generated requests per operation.
"""

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from ledger.sqlite import SqliteLedger
from ledger.verify import verify
from proxy.app import create_app
from proxy.settings import Settings
from tests.fakes.server import serve_in_thread

MAX_EXAMPLES = 75
ADMIN_TOKEN = "admin-token-for-schemathesis"


def fuzzed_settings(ledger_path: Path) -> Settings:
    return Settings(
        ledger_url=f"sqlite:///{ledger_path}",
        admin_token=ADMIN_TOKEN,
        demo_model=True,
        token_cache_ttl_s=0.0,
    )


# The operations are collected when this module is (one test per operation), before any
# gateway runs, so they come from the schema an unstarted gateway of the same settings
# builds; the fixture checks that the running gateway serves exactly that schema.
DOCUMENTED = create_app(fuzzed_settings(Path("never-opened.db"))).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENTED)


@dataclass(frozen=True, slots=True)
class FuzzedGateway:
    url: str
    org_token: str


@pytest.fixture(scope="module")
def fuzzed_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzedGateway]:
    """The gateway under fuzzing; afterwards its ledger must verify clean, no hold left open."""
    ledger_path = tmp_path_factory.mktemp("schemathesis") / "ledger.db"
    with serve_in_thread(create_app(fuzzed_settings(ledger_path))) as url:
        admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=url, headers=admin) as http:
            assert http.get("/openapi.json").json() == DOCUMENTED
            http.post("/admin/organizations", json={"org_id": "fuzzed"}).raise_for_status()
            key = http.post("/admin/organizations/fuzzed/keys", json={"name": "schemathesis"})
            key.raise_for_status()
        yield FuzzedGateway(url=url, org_token=key.json()["token"])
    assert asyncio.run(_unheld_violations(ledger_path)) == (0, [])


async def _unheld_violations(ledger_path: Path) -> tuple[int, list[str]]:
    """Open holds left behind, and what ``verify`` finds, on the fuzzed ledger."""
    store = SqliteLedger(ledger_path)
    await store.open()
    try:
        held = sum(figure.held_units for figure in await store.ledger_figures())
        return held, (await verify(store))[1]
    finally:
        await store.close()


def test_the_protocol_routes_are_documented_with_their_request_schemas() -> None:
    for path in (
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/messages",
        "/v1/messages/count_tokens",
    ):
        body = DOCUMENTED["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["properties"]["model"] == {"$ref": "#/components/schemas/ModelName"}
    assert DOCUMENTED["components"]["schemas"]["ModelName"] == {
        "type": "string",
        "enum": ["spu-demo"],
    }


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(
    case: schemathesis.Case, fuzzed_gateway: FuzzedGateway
) -> None:
    token = ADMIN_TOKEN if case.path.startswith("/admin") else fuzzed_gateway.org_token
    response = case.call(
        base_url=fuzzed_gateway.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )
    operation = DOCUMENTED["paths"][case.path].get(case.method.lower(), {})
    if "503" in operation.get("responses", {}) and response.status_code >= 500:
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "billing_not_configured"
        return
    case.validate_response(response, checks=[not_a_server_error])
