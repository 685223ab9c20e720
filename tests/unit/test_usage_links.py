"""Signed usage links: they name one org, expire, and cannot be forged or altered."""

from pydantic import SecretStr

from proxy.usage.links import LINK_PREFIX, UsageLinks, link_key

NOW_S = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now_s = NOW_S

    def __call__(self) -> float:
        return self.now_s


def links(admin_token: str = "admin", clock: Clock | None = None) -> UsageLinks:
    return UsageLinks(link_key(SecretStr(admin_token)), clock_s=clock or Clock())


def test_a_signed_link_opens_the_org_it_names() -> None:
    token, expires_at_s = links().sign("acme", 3600)

    assert token.startswith(LINK_PREFIX)
    assert expires_at_s == NOW_S + 3600
    assert links().verify(token) == "acme"


def test_a_link_stops_working_when_it_expires() -> None:
    clock = Clock()
    token, _ = links(clock=clock).sign("acme", 60)

    clock.now_s += 59
    assert links(clock=clock).verify(token) == "acme"
    clock.now_s += 1
    assert links(clock=clock).verify(token) is None


def test_a_link_signed_with_another_key_is_refused() -> None:
    token, _ = links("other-admin-token").sign("acme", 3600)

    assert links().verify(token) is None


def test_changing_the_org_or_the_expiry_breaks_the_signature() -> None:
    token, _ = links().sign("acme", 3600)
    forged_org, _ = links().sign("evil", 3600)
    org_part, expiry, signature = token.removeprefix(LINK_PREFIX).split(".")
    evil_part = forged_org.removeprefix(LINK_PREFIX).split(".")[0]

    assert links().verify(f"{LINK_PREFIX}{evil_part}.{expiry}.{signature}") is None
    assert links().verify(f"{LINK_PREFIX}{org_part}.{int(expiry) + 1}.{signature}") is None


def test_garbage_and_org_tokens_are_not_links() -> None:
    for token in ("", LINK_PREFIX, f"{LINK_PREFIX}a.b.c", "spu_abc", f"{LINK_PREFIX}...."):
        assert links().verify(token) is None


def test_the_signing_key_is_derived_from_the_admin_token_not_equal_to_it() -> None:
    key = link_key(SecretStr("admin"))

    assert key == link_key(SecretStr("admin"))
    assert key != b"admin"
    assert key != link_key(SecretStr("admin2"))
    assert link_key(None) == link_key(None)
