"""Operator actions shared by the admin API and the ``spu`` command line.

Both front-ends call these, so a grant retried from the CLI and from the API
with the same idempotency key lands once, and a hand-set plan gets the same
period rules whichever way it was set.
"""

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ledger import AccountNotFound, CreditResult, LedgerStore, Subscription, spus_to_units
from ledger.models import Account

ORG_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
"""Ids that read the same in URLs, logs and tables: no spaces, slashes or markup."""


async def create_organization(
    store: LedgerStore,
    org_id: str,
    *,
    free_grant_units: int,
    user_id: str | None = None,
    user_name: str | None = None,
    user_email: str | None = None,
) -> tuple[Account, bool]:
    """Create the org with its free grant; returns it and whether it is new (idempotent).

    Raises ``ValueError`` for an id outside ``ORG_ID_PATTERN``.
    """
    if not re.fullmatch(ORG_ID_PATTERN, org_id):
        raise ValueError(f"'{org_id}' is not a valid organization id: use letters, digits, _.:@-")
    try:
        return await store.get_account(org_id), False
    except AccountNotFound:
        pass
    account = await store.create_account(
        org_id,
        free_grant_units=free_grant_units,
        user_id=user_id,
        user_name=user_name,
        user_email=user_email,
    )
    return account, True


def grant_idempotency_key(org_id: str, idempotency_key: str | None) -> str:
    """Keys are scoped to the org (as Stripe scopes them to an account); none means a new grant."""
    return f"{org_id}:{idempotency_key or uuid.uuid4().hex}"


async def grant_credits(
    store: LedgerStore,
    org_id: str,
    spus: Decimal,
    reason: str,
    *,
    idempotency_key: str | None = None,
) -> CreditResult:
    """Raises ``ValueError`` for a non-positive amount or one finer than the ledger's unit."""
    amount_units = spus_to_units(spus)
    if amount_units <= 0:
        raise ValueError("a grant must be a positive number of SPUs")
    key = grant_idempotency_key(org_id, idempotency_key)
    return await store.grant(org_id, amount_units, reason, key)


def hand_set_plan(
    account: Account,
    *,
    tier: str,
    allowance_units: int,
    period_days: int,
    period_start: datetime | None,
    now: datetime,
) -> Subscription:
    """An Enterprise plan set by hand, renewed on the ledger's clock.

    Without an explicit start, a plan changed during the org's current period
    keeps that period (used allowance stays used); otherwise it starts now.
    Setting the same plan twice therefore never resets the allowance.
    """
    start = now
    if period_start is not None:
        start = period_start if period_start.tzinfo else period_start.replace(tzinfo=UTC)
    elif account.period_start and account.period_end:
        if account.period_start <= now < account.period_end:
            start = account.period_start
    return Subscription(
        tier=tier,
        allowance_units=allowance_units,
        status="active",
        period_start=start,
        period_end=start + timedelta(days=period_days),
        as_of=now,
        renews_locally=True,
    )
