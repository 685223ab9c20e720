"""Who may reach a stored response: its owner only; every other caller gets OpenAI's 404."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ledger import LedgerUnavailable, ResponseOwner
from proxy.auth import Principal
from proxy.errors import ApiError
from proxy.model_registry import ModelRegistry
from proxy.responses.owners import owned_model
from proxy.settings import ModelRoute

OWNER = Principal(org_id="org_a", key_id="key_a")
OTHER = Principal(org_id="org_b", key_id="key_b")
KEY_ENV = "TEST_RESPONSES_UPSTREAM_KEY"


class Owners:
    """Just the lookup ``owned_model`` makes, from a dict (or down)."""

    def __init__(self, **owners: ResponseOwner) -> None:
        self.owners = owners
        self.down = False
        self.asked: list[str] = []

    async def response_owner(self, response_id: str) -> ResponseOwner | None:
        self.asked.append(response_id)
        if self.down:
            raise LedgerUnavailable("down")
        return self.owners.get(response_id)


def registry() -> ModelRegistry:
    route = ModelRoute(
        model_name="in-house",
        provider_model="in-house-model",
        api_base="http://10.0.0.5/v1",
        api_key_env=KEY_ENV,
        responses_api=True,
        input_cost_per_token=Decimal("0.000001"),
        output_cost_per_token=Decimal("0.000002"),
    )
    return ModelRegistry([route], include_demo=False)


def owner(model: str = "in-house") -> ResponseOwner:
    return ResponseOwner("resp_1", OWNER.org_id, model, datetime(2026, 1, 1, tzinfo=UTC))


async def refused(owners: Owners, principal: Principal, response_id: str = "resp_1") -> ApiError:
    with pytest.raises(ApiError) as caught:
        await owned_model(owners, registry(), principal, response_id)
    return caught.value


@pytest.fixture(autouse=True)
def upstream_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-upstream")


async def test_the_owner_gets_the_model_whose_upstream_holds_it() -> None:
    model = await owned_model(Owners(resp_1=owner()), registry(), OWNER, "resp_1")
    assert model.name == "in-house"


@pytest.mark.parametrize("who", [OTHER, OWNER], ids=["another org", "an id never recorded"])
async def test_anyone_else_gets_the_same_404_as_for_an_id_never_made(who: Principal) -> None:
    owners = Owners(resp_1=owner()) if who is OTHER else Owners()
    error = await refused(owners, who)
    assert (error.status, error.code) == (404, "response_not_found")
    assert error.message == "Response with id 'resp_1' not found."


async def test_what_cannot_be_an_id_is_a_404_without_asking_the_ledger() -> None:
    owners = Owners()
    error = await refused(owners, OWNER, "../models")
    assert error.status == 404 and owners.asked == []


async def test_a_model_no_longer_served_is_a_404_that_says_so() -> None:
    error = await refused(Owners(resp_1=owner("retired")), OWNER)
    assert error.status == 404 and "'retired', which this gateway no longer serves" in error.message


async def test_a_model_without_its_upstream_key_and_a_ledger_down_are_503s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = Owners(resp_1=owner())
    down.down = True
    assert (await refused(down, OWNER)).code == "ledger_unavailable"
    monkeypatch.delenv(KEY_ENV)
    error = await refused(Owners(resp_1=owner()), OWNER)
    assert (error.status, error.code) == (503, "upstream_key_missing")
