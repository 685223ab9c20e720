"""The ledger's objects as the JSON every route, page and table shows.

SPU amounts are decimal strings and costs exact USD strings (``Decimal``,
never ``float``), the same on ``/v1/*``, on the usage page and in the admin API.
"""

from decimal import Decimal
from typing import Any

from ledger import Balance, KeyBudgetUse, KeyLimits, UsageRecord, UsageTotal, format_spus
from ledger.models import PICO_USD_PER_USD


def format_usd(cost_pico_usd: int) -> str:
    """Exact USD text of a pico-USD amount (display edge: Decimal, never float)."""
    text = f"{Decimal(cost_pico_usd) / PICO_USD_PER_USD:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def balance_json(balance: Balance) -> dict[str, Any]:
    account = balance.account

    def bucket(total: int, used: int) -> dict[str, str]:
        return {
            "total": format_spus(total),
            "used": format_spus(used),
            "left": format_spus(total - used),
        }

    return {
        "object": "balance",
        "org_id": account.org_id,
        "available_spus": format_spus(balance.available_units),
        "held_spus": format_spus(balance.held_units),
        "debt_spus": format_spus(account.debt_units),
        "buckets": {
            "subscription": bucket(
                account.subscription_allowance_units, account.subscription_used_units
            ),
            "purchased": bucket(account.purchased_credits_units, account.purchased_used_units),
            "granted": bucket(account.granted_credits_units, account.granted_used_units),
        },
        "plan": {
            "tier": account.subscription_type,
            "status": account.subscription_status,
            "period_start": account.period_start,
            "period_end": account.period_end,
        },
    }


def usage_record_json(record: UsageRecord) -> dict[str, Any]:
    details = record.details
    return {
        "request_id": record.request_id,
        "org_id": record.org_id,
        "key_id": details.key_id,
        "model": details.model,
        "provider": details.provider,
        "operation": details.operation,
        "source": details.source,
        "prompt_tokens": details.prompt_tokens,
        "completion_tokens": details.completion_tokens,
        "total_tokens": details.total_tokens,
        "cost_usd": format_usd(details.cost_pico_usd),
        "spus": format_spus(record.charged_units),
        "split": {
            "subscription": format_spus(record.split.subscription_units),
            "purchased": format_spus(record.split.purchased_units),
            "granted": format_spus(record.split.granted_units),
            "debt": format_spus(record.split.debt_units),
        },
        "latency_ms": details.latency_ms,
        "status": details.status,
        "created_at": record.created_at,
    }


def usage_total_json(total: UsageTotal) -> dict[str, Any]:
    """A group's totals; the caller names the group by what it groups by."""
    return {
        "calls": total.calls,
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
        "total_tokens": total.total_tokens,
        "cost_usd": format_usd(total.cost_pico_usd),
        "spus": format_spus(total.charged_units),
    }


def key_limits_json(limits: KeyLimits) -> dict[str, Any]:
    return {
        "budget_spus": None if limits.budget_units is None else format_spus(limits.budget_units),
        "budget_period": limits.budget_period.value,
        "rpm": limits.rpm,
        "tpm": limits.tpm,
    }


def key_budget_json(use: KeyBudgetUse) -> dict[str, Any]:
    return {
        "window_start": use.window_start,
        "window_end": use.window_end,
        "spent_spus": format_spus(use.spent_units),
        "held_spus": format_spus(use.held_units),
        "left_spus": format_spus(use.left_units),
    }
