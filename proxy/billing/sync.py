"""Reconcile every org that has a Stripe customer, so a missed webhook heals.

Run in the background at start-up and by ``spu stripe sync``. For each org:
its plan from its subscriptions, and every paid credit session it completed
(the ledger credits each session at most once, so this only fills gaps).
"""

import asyncio
import logging
from dataclasses import dataclass, field

import stripe

from ledger import Account, LedgerError, LedgerStore
from proxy.billing.catalogue.prices import CatalogueError
from proxy.billing.client import PAGE_LIMIT, ListingTooLong, list_all
from proxy.billing.purchases import UnattributablePayment, credit_session
from proxy.billing.subscriptions import reconcile_customer
from proxy.billing.webhooks.outcomes import Outcome

logger = logging.getLogger("spu.billing.sync")

ACCOUNTS_PAGE = 500
SYNC_CONCURRENCY = 4
"""Orgs reconciled at once: well inside Stripe's rate limit (25 reads/s in test mode)."""


@dataclass
class SyncReport:
    orgs: int = 0
    sessions_credited: int = 0
    failures: list[str] = field(default_factory=list)


async def sync_org(
    client: stripe.StripeClient, store: LedgerStore, product_id: str, customer_id: str
) -> int:
    """Reconcile one customer's plan and credit sessions; returns sessions newly credited."""
    await reconcile_customer(client, store, product_id, customer_id)
    sessions = await list_all(
        await client.v1.checkout.sessions.list_async(
            {
                "customer": customer_id,
                "status": "complete",
                "expand": ["data.line_items"],
                "limit": PAGE_LIMIT,
            }
        )
    )
    credited = 0
    for session in sessions:
        outcome = await credit_session(client, store, product_id, session)
        credited += outcome is Outcome.CREDITED
    return credited


async def _customers(store: LedgerStore) -> list[Account]:
    accounts: list[Account] = []
    after = ""
    while True:
        page = await store.list_accounts(limit=ACCOUNTS_PAGE, after_org_id=after)
        accounts.extend(a for a in page if a.stripe_customer_id)
        if len(page) < ACCOUNTS_PAGE:
            return accounts
        after = page[-1].org_id


async def sync_all(client: stripe.StripeClient, store: LedgerStore, product_id: str) -> SyncReport:
    """Every org with a customer; one org's failure is reported, not fatal to the rest."""
    report = SyncReport()
    gate = asyncio.Semaphore(SYNC_CONCURRENCY)

    async def one(account: Account) -> None:
        assert account.stripe_customer_id is not None
        async with gate:
            try:
                report.sessions_credited += await sync_org(
                    client, store, product_id, account.stripe_customer_id
                )
            except (
                stripe.StripeError,
                LedgerError,
                CatalogueError,
                ListingTooLong,
                UnattributablePayment,
            ) as error:
                logger.error("Stripe sync of org %s failed: %s", account.org_id, error)
                report.failures.append(f"{account.org_id}: {error}")
            report.orgs += 1

    await asyncio.gather(*(one(account) for account in await _customers(store)))
    return report
