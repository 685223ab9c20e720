"""The invariants of the ledger, checked on figures read from a live store.

Pure: ``violations`` takes one org's figures and says, in words, what is
wrong; ``verify`` reads every org from a store and collects them.

Open holds are not compared with the balance: a hold fitted when it was
placed (the hold operation proves that), but a refund, a lapsed allowance or a
smaller plan may take credit away from under it later, and that is no fault.
"""

from ledger.key_limits import DAY_MS, window_end_ms, window_start_ms
from ledger.models import KeyBudgetFigures, OrgLedgerFigures
from ledger.store import LedgerReports


def key_budget_violations(org: str, key: KeyBudgetFigures) -> list[str]:
    """A key's settled spend in a window never exceeds its budget.

    Checked for every window since the limits were last set (older windows ran
    under limits no longer known), against the budget or, in the window the
    budget was lowered in, what that window had already committed then if that
    was more. Every day since the key's creation lies inside one window, so the
    spend by day adds up to the spend by window. The window's running total
    must equal its usage records.
    """
    budget_units = key.limits.budget_units
    assert budget_units is not None
    period = key.limits.budget_period
    first_start_ms = window_start_ms(key.created_at_ms, period, key.limits_set_at_ms)
    by_window: dict[int, int] = {}
    for day, units in key.spend_by_day:
        start_ms = window_start_ms(key.created_at_ms, period, key.created_at_ms + day * DAY_MS)
        by_window[start_ms] = by_window.get(start_ms, 0) + units
    found: list[str] = []
    allowed_units = max(budget_units, key.committed_units)
    for start_ms, spent_units in sorted(by_window.items()):
        if start_ms >= first_start_ms and spent_units > allowed_units:
            end_ms = window_end_ms(key.created_at_ms, period, start_ms)
            found.append(
                f"{org}: key {key.key_id} settled {spent_units} units in its {period.value}"
                f" window from {start_ms} to {end_ms}, over its budget of {allowed_units}"
            )
    if key.window_start_ms is not None:
        counted = by_window.get(key.window_start_ms, 0)
        if counted != key.window_spent_units:
            found.append(
                f"{org}: key {key.key_id}'s running total says {key.window_spent_units} units"
                f" for its window from {key.window_start_ms}, its usage records {counted}"
            )
    return found


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
    for key in figures.key_budgets:
        found.extend(key_budget_violations(org, key))
    return found


async def verify(store: LedgerReports) -> tuple[int, list[str]]:
    """Check every org; returns how many were checked and every violation found."""
    all_figures = await store.ledger_figures()
    found: list[str] = []
    for figures in all_figures:
        found.extend(violations(figures))
    return len(all_figures), found
