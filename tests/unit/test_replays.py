"""A retried ledger write matches its first one, or is refused as a conflict."""

from datetime import UTC, datetime

import pytest

from ledger.errors import IdempotencyConflict
from ledger.models import AccessKey, CreditKind, CreditTransaction
from ledger.replays import check_key_replay, credit_replay, hold_replay

START = datetime(2027, 3, 1, tzinfo=UTC)


def test_adding_a_key_again_is_the_same_add_only_for_the_same_id_org_and_token() -> None:
    key = AccessKey("key-1", "org-1", "spu_abcd", "a" * 64, "ci", START)

    check_key_replay(key, AccessKey("key-1", "org-1", "spu_zzzz", "a" * 64, "renamed", START))
    with pytest.raises(IdempotencyConflict):
        check_key_replay(key, AccessKey("key-2", "org-1", "spu_abcd", "a" * 64, "ci", START))
    with pytest.raises(IdempotencyConflict):
        check_key_replay(key, AccessKey("key-1", "org-1", "spu_abcd", "b" * 64, "ci", START))


def test_a_credit_retried_with_the_same_content_is_not_applied_again() -> None:
    stored = CreditTransaction("grant:k", "org-1", CreditKind.GRANT, 5, 0, "promo", START)

    assert credit_replay(stored, "org-1", CreditKind.GRANT, 5).applied is False
    with pytest.raises(IdempotencyConflict):
        credit_replay(stored, "org-1", CreditKind.GRANT, 6)
    with pytest.raises(IdempotencyConflict):
        credit_replay(stored, "org-2", CreditKind.GRANT, 5)


def test_a_hold_retried_for_another_org_or_amount_is_a_conflict() -> None:
    placed = hold_replay(
        "req-1", "org-1", 7, held_org_id="org-1", held_amount_units=7, expires_at_ms=1_000
    )

    assert placed.expires_at == datetime.fromtimestamp(1, UTC)
    with pytest.raises(IdempotencyConflict):
        hold_replay(
            "req-1", "org-1", 8, held_org_id="org-1", held_amount_units=7, expires_at_ms=1_000
        )
