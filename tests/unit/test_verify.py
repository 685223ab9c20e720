"""``verify`` names every broken invariant of an org's figures, and nothing on healthy ones."""

from dataclasses import replace
from datetime import UTC, datetime

from ledger.key_limits import DAY_MS, BudgetPeriod, KeyLimits
from ledger.models import Account, KeyBudgetFigures, OrgLedgerFigures
from ledger.verify import verify, violations
from ledger.waterfall import BucketSplit
from tests.builders import account

NOW = datetime(2027, 1, 1, tzinfo=UTC)


def _account(**changes: object) -> Account:
    """Used 20 of a 50 allowance, 10 of 40 purchased, none of 100 granted; owing 5."""
    healthy: dict[str, object] = {
        "subscription_type": "pro",
        "subscription_status": "active",
        "subscription_allowance_units": 50,
        "subscription_used_units": 20,
        "period_start": NOW,
        "period_end": NOW,
        "purchased_credits_units": 40,
        "purchased_used_units": 10,
        "granted_credits_units": 100,
        "debt_units": 5,
        "subscription_as_of": NOW,
    }
    return account(NOW, **(healthy | changes))


def _healthy(**changes: object) -> OrgLedgerFigures:
    """Credited 190, debited 35 (20 + 10 + 5 of debt): the buckets hold 160, owing 5."""
    figures = OrgLedgerFigures(
        account=_account(),
        credited_units=190,
        debited_units=35,
        usage_record_count=3,
        settled_hold_count=3,
        settled_hold_units=40,
        held_units=12,
        split_sums=BucketSplit(20, 10, 0, 5),
        counted_held_units=12,
    )
    return replace(figures, **changes)


def test_healthy_figures_have_no_violations() -> None:
    assert violations(_healthy()) == []
    assert violations(_healthy(counted_held_units=None)) == []


def test_open_holds_beyond_the_balance_are_not_a_violation() -> None:
    """A refund or a lapsed allowance may take credit from under a hold placed earlier."""
    assert violations(_healthy(held_units=10_000, counted_held_units=10_000)) == []


def test_a_negative_bucket_is_named() -> None:
    account = _account(granted_used_units=101)
    figures = _healthy(account=account, credited_units=190, debited_units=136)

    assert violations(figures)[0] == "org-1: granted bucket is negative (-1 units)"


def test_negative_debt_is_a_violation() -> None:
    found = violations(_healthy(account=_account(debt_units=-1), debited_units=29))

    assert any("debt is negative" in line for line in found)


def test_broken_conservation_is_a_violation() -> None:
    found = violations(_healthy(credited_units=191))

    assert found == [
        "org-1: conservation broken: credited 191 - debited 35 = 156, but the balance is 155"
    ]


def test_usage_splits_that_do_not_add_up_are_a_violation() -> None:
    found = violations(_healthy(split_sums=BucketSplit(20, 10, 0, 4)))

    assert any("splits sum to 34" in line for line in found)


def test_a_settled_hold_without_its_usage_record_is_a_violation() -> None:
    found = violations(_healthy(settled_hold_count=4))

    assert found == ["org-1: 4 settled holds but 3 usage records"]


def test_a_drifted_running_total_of_holds_is_a_violation() -> None:
    found = violations(_healthy(counted_held_units=13))

    assert found == [
        "org-1: the running total of open holds says 13, the open holds themselves sum to 12"
    ]


class _FiguresOnly:
    def __init__(self, figures: list[OrgLedgerFigures]) -> None:
        self.figures = figures

    async def ledger_figures(self) -> list[OrgLedgerFigures]:
        return self.figures


async def test_verify_checks_every_org_and_collects_all_violations() -> None:
    broken = _healthy(account=_account(org_id="org-2"), credited_units=0)
    store = _FiguresOnly([_healthy(), broken])

    checked, found = await verify(store)

    assert checked == 2
    assert len(found) == 1 and found[0].startswith("org-2: conservation broken")


def _key(**changes: object) -> KeyBudgetFigures:
    """A daily budget of 100 set at creation: 90 spent on day 0, 100 on day 1, 40 on day 3."""
    figures = KeyBudgetFigures(
        key_id="key-1",
        limits=KeyLimits(budget_units=100, budget_period=BudgetPeriod.DAY),
        created_at_ms=1_000,
        limits_set_at_ms=1_000,
        committed_units=0,
        window_start_ms=1_000 + 3 * DAY_MS,
        window_spent_units=40,
        spend_by_day=((0, 90), (1, 100), (3, 40)),
    )
    return replace(figures, **changes)


def test_a_key_within_its_budget_in_every_window_has_no_violations() -> None:
    assert violations(_healthy(key_budgets=(_key(),))) == []
    weekly = _key(
        limits=KeyLimits(budget_units=230, budget_period=BudgetPeriod.WEEK),
        window_start_ms=1_000,
        window_spent_units=230,
    )
    assert violations(_healthy(key_budgets=(weekly,))) == []


def test_a_window_over_the_key_budget_is_named() -> None:
    weekly = _key(
        limits=KeyLimits(budget_units=229, budget_period=BudgetPeriod.WEEK),
        window_start_ms=1_000,
        window_spent_units=230,
    )
    [found] = violations(_healthy(key_budgets=(weekly,)))
    assert "key key-1 settled 230 units in its week window" in found
    over = _key(spend_by_day=((0, 90), (1, 101), (3, 40)))
    [found] = violations(_healthy(key_budgets=(over,)))
    assert "settled 101 units" in found


def test_windows_before_the_limits_were_set_and_a_lowered_budget_are_allowed() -> None:
    later = _key(spend_by_day=((0, 500), (1, 100), (3, 40)), limits_set_at_ms=1_000 + DAY_MS)
    assert violations(_healthy(key_budgets=(later,))) == []
    lowered = _key(
        limits=KeyLimits(budget_units=50, budget_period=BudgetPeriod.DAY),
        limits_set_at_ms=1_000 + 3 * DAY_MS + 5,
        committed_units=40,
        spend_by_day=((0, 90), (1, 100), (3, 40)),
    )
    assert violations(_healthy(key_budgets=(lowered,))) == []
    assert violations(_healthy(key_budgets=(replace(lowered, committed_units=0),))) == []
    over = replace(lowered, limits=KeyLimits(budget_units=30, budget_period=BudgetPeriod.DAY))
    [found] = violations(_healthy(key_budgets=(replace(over, committed_units=35),)))
    assert "settled 40 units" in found


def test_a_running_total_that_disagrees_with_the_usage_records_is_named() -> None:
    [found] = violations(_healthy(key_budgets=(_key(window_spent_units=39),)))
    assert "running total says 39 units" in found
