"""What a retried write must match to be answered as the first one was.

Every ledger write is idempotent by an id the caller chose. A retry with the
same content gets the first answer; the same id with other content is an
``IdempotencyConflict`` and changes nothing. Both backends ask these rules.
"""

from ledger.clock import from_ms
from ledger.errors import IdempotencyConflict
from ledger.models import AccessKey, CreditKind, CreditResult, CreditTransaction, HoldPlaced


def hold_replay(
    request_id: str,
    org_id: str,
    amount_units: int,
    *,
    held_org_id: str,
    held_amount_units: int,
    expires_at_ms: int,
) -> HoldPlaced:
    """A hold already placed under ``request_id``: the same answer, whatever state it is in."""
    if (held_org_id, held_amount_units) != (org_id, amount_units):
        raise IdempotencyConflict("hold", request_id, "different org or amount")
    return HoldPlaced(request_id, org_id, amount_units, from_ms(expires_at_ms))


def check_settlement_replay(request_id: str, charged_units: int, actual_units: int) -> None:
    """A settlement retried for another amount is refused: the first one stands."""
    if charged_units != actual_units:
        raise IdempotencyConflict(
            "settlement", request_id, f"settled at {charged_units}, not {actual_units}"
        )


def credit_replay(
    stored: CreditTransaction, org_id: str, kind: CreditKind, amount_units: int
) -> CreditResult:
    """A credit already recorded under its transaction id: not applied again."""
    if (stored.org_id, stored.kind, stored.amount_units) != (org_id, kind, amount_units):
        raise IdempotencyConflict("credit", stored.transaction_id, "different org, kind or amount")
    return CreditResult(stored, applied=False)


def check_key_replay(stored: AccessKey, key: AccessKey) -> None:
    """Adding a key again is a no-op only for the same id, org and token hash."""
    if (stored.key_id, stored.org_id, stored.token_sha256) != (
        key.key_id,
        key.org_id,
        key.token_sha256,
    ):
        raise IdempotencyConflict("access key", key.key_id, "id or token already in use")
