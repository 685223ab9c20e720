"""Access tokens: random, stored hashed, refused when wrong, revoked or expired."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger import LedgerStore
from ledger.sqlite import SqliteLedger
from proxy.auth import TOKEN_PREFIX, TokenAuthenticator, hash_token, issue_token
from proxy.errors import ApiError
from tests.fakes.ledger import SwitchableLedger

CACHE_TTL_S = 5.0


class FakeMonotonic:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SwitchableLedger]:
    ledger = SwitchableLedger(SqliteLedger(tmp_path / "ledger.db"))
    await ledger.open()
    await ledger.create_account("org_a", free_grant_units=0)
    await ledger.create_account("org_b", free_grant_units=0)
    try:
        yield ledger
    finally:
        await ledger.close()


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def auth(store: LedgerStore, clock: FakeMonotonic) -> TokenAuthenticator:
    return TokenAuthenticator(store, cache_ttl_s=CACHE_TTL_S, monotonic=clock)


async def refused(auth: TokenAuthenticator, token: str | None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await auth.authenticate(token)
    assert caught.value.status == 401
    return caught.value


async def test_issued_tokens_are_random_and_only_their_hash_is_stored(
    store: LedgerStore,
) -> None:
    token, key = await issue_token(store, "org_a", name="ci")
    other, _ = await issue_token(store, "org_a")
    assert token.startswith(TOKEN_PREFIX) and len(token) >= len(TOKEN_PREFIX) + 43
    assert token != other
    stored = next(k for k in await store.list_access_keys("org_a") if k.key_id == key.key_id)
    assert stored.token_sha256 == hash_token(token)
    assert token not in repr(stored)
    assert token.startswith(stored.prefix) and len(stored.prefix) < len(token)


async def test_a_token_authenticates_as_its_own_org_and_key(
    store: LedgerStore, auth: TokenAuthenticator
) -> None:
    token_a, key_a = await issue_token(store, "org_a")
    token_b, key_b = await issue_token(store, "org_b")
    principal_a = await auth.authenticate(token_a)
    principal_b = await auth.authenticate(token_b)
    assert (principal_a.org_id, principal_a.key_id) == ("org_a", key_a.key_id)
    assert (principal_b.org_id, principal_b.key_id) == ("org_b", key_b.key_id)


async def test_missing_and_unknown_tokens_are_refused(auth: TokenAuthenticator) -> None:
    assert "Missing" in (await refused(auth, None)).message
    assert (await refused(auth, "spu_unknown")).code == "invalid_api_key"


async def test_expired_token_is_refused(store: LedgerStore, auth: TokenAuthenticator) -> None:
    token, _ = await issue_token(
        store, "org_a", expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert "expired" in (await refused(auth, token)).message


async def test_revocation_takes_effect_within_the_cache_ttl_and_at_once_after_forget(
    store: LedgerStore, auth: TokenAuthenticator, clock: FakeMonotonic
) -> None:
    token, key = await issue_token(store, "org_a")
    await auth.authenticate(token)
    await store.revoke_access_key("org_a", key.key_id)
    await auth.authenticate(token)  # still cached on this worker
    clock.now_s += CACHE_TTL_S + 0.001
    assert "revoked" in (await refused(auth, token)).message

    second, second_key = await issue_token(store, "org_a")
    await auth.authenticate(second)
    await store.revoke_access_key("org_a", second_key.key_id)
    auth.forget(second_key.token_sha256)
    assert "revoked" in (await refused(auth, second)).message


async def test_cached_token_keeps_working_while_the_ledger_is_down_but_a_new_one_gets_503(
    store: SwitchableLedger, auth: TokenAuthenticator
) -> None:
    token, _ = await issue_token(store, "org_a")
    fresh, _ = await issue_token(store, "org_b")
    await auth.authenticate(token)
    store.down = True
    assert (await auth.authenticate(token)).org_id == "org_a"
    with pytest.raises(ApiError) as caught:
        await auth.authenticate(fresh)
    assert caught.value.status == 503
