"""The token holder's own balance and usage (never another org's)."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from ledger import Balance, LedgerUnavailable, UsageRecord, UsageTotal, format_spus
from ledger.models import PICO_USD_PER_USD
from proxy.auth import Principal
from proxy.errors import ledger_unavailable
from proxy.gateway import authenticated, gateway_of
from proxy.usage_window import usage_window

router = APIRouter()

Caller = Annotated[Principal, Depends(authenticated)]

MAX_USAGE_RECORDS = 1000


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


@router.get("/v1/balance")
async def balance(request: Request, principal: Caller) -> dict[str, Any]:
    try:
        current = await gateway_of(request).store.balance(principal.org_id)
    except LedgerUnavailable as error:
        raise ledger_unavailable() from error
    return balance_json(current)


@router.get("/v1/usage")
async def usage(
    request: Request,
    principal: Caller,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    group_by: Literal["model", "day", "key"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_USAGE_RECORDS)] = 100,
) -> dict[str, Any]:
    window = usage_window(start, end, now=datetime.now(UTC))
    store = gateway_of(request).store
    try:
        if group_by is None:
            records = await store.usage_records(
                principal.org_id, start=window.start, end=window.end, limit=limit
            )
            data: list[dict[str, Any]] = [usage_record_json(record) for record in records]
        else:
            totals = await store.usage_totals(
                principal.org_id, group_by, start=window.start, end=window.end
            )
            data = [{group_by: total.group, **usage_total_json(total)} for total in totals]
    except LedgerUnavailable as error:
        raise ledger_unavailable() from error
    return {
        "object": "list",
        "from": window.start,
        "to": window.end,
        "group_by": group_by,
        "data": data,
    }
