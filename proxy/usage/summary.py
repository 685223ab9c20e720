"""What the usage page shows: balance, billing period, SPUs per day by model, recent calls, and
the spend controls (each key's limits and budget use, alerts, auto-recharge).

The ledger totals by one key at a time, so the day × model grid is read as one
``group_by=model`` total per UTC day: exact figures, and a bounded number of
indexed reads (at most ``MAX_CHART_DAYS``) however many calls the org made.
"""

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ledger import LedgerStore, format_spus
from ledger.models import Account
from proxy.ledger_json import (
    balance_json,
    format_usd,
    key_budget_json,
    key_limits_json,
    usage_record_json,
)
from proxy.usage.window import through

MAX_CHART_DAYS = 62
"""Two months of bars: a monthly period in full; a longer (Enterprise) one by its latest days."""
ROLLING_WINDOW_DAYS = 30
"""Orgs without a billing period see their last 30 days."""
SECONDS_PER_DAY = 86_400
RECENT_NOTICES = 5
"""Alerts and recharges shown: the latest few, newest first."""


@dataclass(frozen=True, slots=True)
class ChartWindow:
    start: datetime
    end: datetime
    days: list[date]


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def chart_window(account: Account, now: datetime) -> ChartWindow:
    """The period's days (UTC), or the last 30; never more than ``MAX_CHART_DAYS``."""
    if account.period_start is not None and account.period_end is not None:
        start, end = account.period_start, account.period_end
    else:
        start = _day_start(now.date()) - timedelta(days=ROLLING_WINDOW_DAYS - 1)
        end = _day_start(now.date()) + timedelta(days=1)
    last_day = (end - timedelta(microseconds=1)).date()
    first_day = start.date()
    if (last_day - first_day).days >= MAX_CHART_DAYS:
        last_day = min(last_day, now.date())
        first_day = max(first_day, last_day - timedelta(days=MAX_CHART_DAYS - 1))
        start = max(start, _day_start(first_day))
    count = (last_day - first_day).days + 1
    return ChartWindow(start, end, [first_day + timedelta(days=n) for n in range(count)])


def days_left(account: Account, now: datetime) -> int | None:
    """Whole days until the period ends, counting a started day as one."""
    if account.period_end is None:
        return None
    return max(0, math.ceil((account.period_end - now).total_seconds() / SECONDS_PER_DAY))


async def daily_by_model(
    store: LedgerStore, org_id: str, window: ChartWindow, now: datetime
) -> list[dict[str, Any]]:
    """One row per (day, model) with usage; days after today are not read (they have none)."""
    spans = []
    for day in window.days:
        since = max(_day_start(day), window.start)
        until = min(_day_start(day) + timedelta(days=1), window.end, through(now))
        if since < until:
            spans.append((day, since, until))
    totals = await asyncio.gather(
        *(store.usage_totals(org_id, "model", start=since, end=until) for _, since, until in spans)
    )
    return [
        {
            "day": day.isoformat(),
            "model": total.group,
            "calls": total.calls,
            "total_tokens": total.total_tokens,
            "cost_usd": format_usd(total.cost_pico_usd),
            "spus": format_spus(total.charged_units),
        }
        for (day, _, _), day_totals in zip(spans, totals, strict=True)
        for total in day_totals
    ]


async def spend_controls(store: LedgerStore, org_id: str) -> dict[str, Any]:
    """Each limited key's limits and budget use, and the alert and recharge state (never the
    alert URL or its secret: a read-only link may show this page)."""
    keys, budgets, alerts, recharge = await asyncio.gather(
        store.list_access_keys(org_id),
        store.key_budget_use(org_id),
        store.alert_settings(org_id),
        store.auto_recharge(org_id),
    )
    used = {use.key_id: use for use in budgets}
    limited = [
        {
            "key_id": key.key_id,
            "name": key.name,
            "prefix": key.prefix,
            **key_limits_json(key.limits),
            "budget": None if key.key_id not in used else key_budget_json(used[key.key_id]),
        }
        for key in keys
        if key.revoked_at is None
        and (key.limits.budget_units is not None or key.limits.rate_limited)
    ]
    events = await store.alert_events(org_id, limit=RECENT_NOTICES) if alerts else []
    recharges = await store.recharges(org_id, limit=RECENT_NOTICES) if recharge else []
    return {
        "keys": limited,
        "alerts": None
        if alerts is None
        else {
            "thresholds_spus": [format_spus(units) for units in alerts.thresholds_units],
            "recent": [
                {
                    "type": event.kind.value,
                    "state": event.state.value,
                    "attempts": event.attempts,
                    "created": event.created_at,
                }
                for event in events
            ],
        },
        "auto_recharge": None
        if recharge is None
        else {
            "threshold_spus": format_spus(recharge.threshold_units),
            "amount_spus": format_spus(recharge.amount_units),
            "monthly_cap_spus": format_spus(recharge.monthly_cap_units),
            "recent": [
                {
                    "amount_spus": format_spus(item.amount_units),
                    "state": item.state.value,
                    "reason": item.reason,
                    "created": item.created_at,
                }
                for item in recharges
            ],
        },
    }


async def usage_summary(
    store: LedgerStore, org_id: str, *, recent_calls: int, now: datetime
) -> dict[str, Any]:
    balance = await store.balance(org_id)
    account = balance.account
    window = chart_window(account, now)
    daily, recent, controls = await asyncio.gather(
        daily_by_model(store, org_id, window, now),
        store.usage_records(org_id, limit=recent_calls),
        spend_controls(store, org_id),
    )
    return {
        "object": "usage_summary",
        "org_id": org_id,
        "balance": balance_json(balance),
        "period": {
            "start": account.period_start,
            "end": account.period_end,
            "days_left": days_left(account, now),
        },
        "daily": {
            "from": window.start,
            "to": window.end,
            "days": [day.isoformat() for day in window.days],
            "data": daily,
        },
        "recent": [usage_record_json(record) for record in recent],
        "spend_controls": controls,
    }
