"""The invariants of the ledger, checked on figures read from a live store.

Pure: ``violations`` takes one org's figures and says, in words, what is
wrong; ``verify`` reads every org from a store and collects them.

Open holds are not compared with the balance: a hold fitted when it was
placed (the hold operation proves that), but a refund, a lapsed allowance or a
smaller plan may take credit away from under it later, and that is no fault.
"""

from ledger.models import OrgLedgerFigures
from ledger.store import LedgerReports


def violations(figures: OrgLedgerFigures) -> list[str]:
    account = figures.account
    org = account.org_id
    found: list[str] = []
    buckets = {
        "subscription": account.subscription_left_units,
        "purchased": account.purchased_left_units,
        "granted": account.granted_left_units,
    }
    for bucket, left in buckets.items():
        if left < 0:
            found.append(f"{org}: {bucket} bucket is negative ({left} units)")
    if account.debt_units < 0:
        found.append(f"{org}: debt is negative ({account.debt_units} units)")
    if figures.held_units < 0:
        found.append(f"{org}: open holds sum to a negative amount ({figures.held_units} units)")
    if figures.counted_held_units is not None and figures.counted_held_units != figures.held_units:
        found.append(
            f"{org}: the running total of open holds says {figures.counted_held_units},"
            f" the open holds themselves sum to {figures.held_units}"
        )
    expected_net = figures.credited_units - figures.debited_units
    if expected_net != account.net_balance_units:
        found.append(
            f"{org}: conservation broken: credited {figures.credited_units} - debited"
            f" {figures.debited_units} = {expected_net}, but the balance is"
            f" {account.net_balance_units}"
        )
    if figures.split_sums.total_units != figures.debited_units:
        found.append(
            f"{org}: usage records' bucket splits sum to {figures.split_sums.total_units},"
            f" not their charged total {figures.debited_units}"
        )
    if figures.settled_hold_count != figures.usage_record_count:
        found.append(
            f"{org}: {figures.settled_hold_count} settled holds but"
            f" {figures.usage_record_count} usage records"
        )
    return found


async def verify(store: LedgerReports) -> tuple[int, list[str]]:
    """Check every org; returns how many were checked and every violation found."""
    all_figures = await store.ledger_figures()
    found: list[str] = []
    for figures in all_figures:
        found.extend(violations(figures))
    return len(all_figures), found
