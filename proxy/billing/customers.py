"""An org's Stripe customer: created once, on first use, and the org found from it again."""

from typing import Any

import stripe

from ledger import AccountNotFound, LedgerStore


def customer_idempotency_key(org_id: str) -> str:
    """Concurrent first uses send the same key, so Stripe creates one customer, not two."""
    return f"spu-customer-{org_id}"


async def ensure_customer(client: stripe.StripeClient, store: LedgerStore, org_id: str) -> str:
    """The org's customer id, creating the customer in Stripe if it has none yet.

    If two first uses still race past the idempotency key (e.g. a day apart,
    after the key expired), the ledger keeps the first customer recorded and
    both callers use it.
    """
    account = await store.get_account(org_id)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    params: dict[str, Any] = {"metadata": {"org_id": org_id}}
    if account.user_email:
        params["email"] = account.user_email
    if account.user_name:
        params["name"] = account.user_name
    customer = await client.v1.customers.create_async(
        params, {"idempotency_key": customer_idempotency_key(org_id)}
    )
    return await store.set_stripe_customer(org_id, customer.id)


async def org_for_customer(
    store: LedgerStore, customer_id: str | None, metadata_org_id: str | None
) -> str | None:
    """The org a Stripe object is for: by its customer, else by the org id in its metadata."""
    if customer_id:
        org_id = await store.find_org_by_stripe_customer(customer_id)
        if org_id is not None:
            return org_id
    if metadata_org_id:
        try:
            await store.get_account(metadata_org_id)
        except AccountNotFound:
            return None
        return metadata_org_id
    return None
