"""Properties of billing-period rules: resets, plan changes, lapses and local renewal."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.periods import (
    AllowanceChange,
    audit_lines,
    is_stale,
    lapse_allowance,
    new_period_allowance,
    roll_forward_ms,
    same_period_allowance,
)

units = st.integers(min_value=0, max_value=10**15)


@st.composite
def allowance_state(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """An old allowance, what was used of it (never more), a new allowance and a debt."""
    old_allowance = draw(units)
    old_used = draw(st.integers(min_value=0, max_value=old_allowance))
    return old_allowance, old_used, draw(units), draw(units)


def _net_change(old_allowance: int, old_used: int, debt: int, change: AllowanceChange) -> int:
    before = old_allowance - old_used - debt
    after = change.allowance_units - change.used_units - change.debt_units
    return after - before


def _is_sane(change: AllowanceChange) -> bool:
    return (
        0 <= change.used_units <= change.allowance_units
        and change.debt_units >= 0
        and change.lapsed_units >= 0
        and change.credited_units >= 0
        and 0 <= change.debt_paid_units <= change.credited_units
    )


@given(allowance_state())
def test_a_new_period_restores_the_full_allowance_and_pays_debt_first(
    state: tuple[int, int, int, int],
) -> None:
    old_allowance, old_used, new_allowance, debt = state

    change = new_period_allowance(old_allowance, old_used, new_allowance, debt)

    assert _is_sane(change)
    assert change.allowance_units == change.credited_units == new_allowance
    assert change.used_units == change.debt_paid_units == min(new_allowance, debt)
    assert change.debt_units == debt - change.debt_paid_units
    assert change.lapsed_units == old_allowance - old_used


@given(allowance_state())
def test_a_plan_change_in_the_period_keeps_what_was_used(
    state: tuple[int, int, int, int],
) -> None:
    old_allowance, old_used, new_allowance, debt = state

    change = same_period_allowance(old_allowance, old_used, new_allowance, debt)

    assert _is_sane(change)
    assert change.allowance_units == max(new_allowance, old_used)
    assert change.used_units == old_used + change.debt_paid_units
    assert not (change.lapsed_units and change.credited_units)


@given(allowance_state())
def test_a_same_plan_again_changes_nothing(state: tuple[int, int, int, int]) -> None:
    old_allowance, old_used, _, debt = state

    change = same_period_allowance(old_allowance, old_used, old_allowance, debt)

    assert (change.allowance_units, change.used_units, change.debt_units) == (
        old_allowance,
        old_used,
        debt,
    )
    assert change.lapsed_units == change.credited_units == 0


@given(allowance_state())
def test_ending_a_plan_lapses_what_is_left_and_keeps_debt(
    state: tuple[int, int, int, int],
) -> None:
    old_allowance, old_used, _, debt = state

    change = lapse_allowance(old_allowance, old_used, debt)

    assert _is_sane(change)
    assert (change.allowance_units, change.used_units, change.debt_units) == (0, 0, debt)
    assert change.lapsed_units == old_allowance - old_used


@given(allowance_state())
def test_every_allowance_change_is_explained_by_its_audit_lines(
    state: tuple[int, int, int, int],
) -> None:
    old_allowance, old_used, new_allowance, debt = state
    for change in (
        new_period_allowance(old_allowance, old_used, new_allowance, debt),
        same_period_allowance(old_allowance, old_used, new_allowance, debt),
        lapse_allowance(old_allowance, old_used, debt),
    ):
        net = _net_change(old_allowance, old_used, debt, change)
        assert net == change.credited_units - change.lapsed_units


times_ms = st.integers(min_value=0, max_value=10**13)
lengths_ms = st.integers(min_value=1, max_value=10**11)


@given(times_ms, lengths_ms, times_ms)
def test_renewal_lands_on_the_period_that_contains_now(
    start_ms: int, length_ms: int, now_ms: int
) -> None:
    end_ms = start_ms + length_ms

    new_start, new_end = roll_forward_ms(start_ms, end_ms, now_ms)

    assert new_end - new_start == length_ms
    assert (new_start - start_ms) % length_ms == 0
    if now_ms < end_ms:
        assert (new_start, new_end) == (start_ms, end_ms)
    else:
        assert new_start <= now_ms < new_end


@given(times_ms, lengths_ms, times_ms)
def test_renewal_is_idempotent(start_ms: int, length_ms: int, now_ms: int) -> None:
    assume(now_ms >= start_ms)
    once = roll_forward_ms(start_ms, start_ms + length_ms, now_ms)

    assert roll_forward_ms(*once, now_ms) == once


def test_renewal_refuses_an_empty_period() -> None:
    with pytest.raises(ValueError):
        roll_forward_ms(1_000, 1_000, 5_000)


@given(allowance_state())
def test_audit_lines_record_the_lapse_and_the_credit_with_fresh_ids(
    state: tuple[int, int, int, int],
) -> None:
    old_allowance, old_used, new_allowance, debt = state
    change = new_period_allowance(old_allowance, old_used, new_allowance, debt)

    lines = audit_lines("org-1", change)

    assert sum(line.amount_units for line in lines) == change.credited_units - change.lapsed_units
    assert sum(line.debt_paid_units for line in lines) == change.debt_paid_units
    assert all(line.amount_units for line in lines)
    again = audit_lines("org-1", change)
    assert not {line.transaction_id for line in lines} & {line.transaction_id for line in again}


def test_an_update_older_than_the_recorded_one_is_stale() -> None:
    assert is_stale(2_000, 1_999)
    assert not is_stale(2_000, 2_000)
    assert not is_stale(None, 0)
