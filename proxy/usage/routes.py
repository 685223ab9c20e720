"""``/v1/balance`` and ``/v1/usage``: the token holder's own balance and usage records (never
another org's)."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from ledger import LedgerUnavailable
from proxy.api_time import ApiTime
from proxy.auth import Principal
from proxy.errors import ledger_unavailable
from proxy.gateway import authenticated, gateway_of
from proxy.ledger_json import balance_json, usage_record_json, usage_total_json
from proxy.usage.window import usage_window

router = APIRouter()

Caller = Annotated[Principal, Depends(authenticated)]

MAX_USAGE_RECORDS = 1000


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
    start: Annotated[ApiTime | None, Query(alias="from")] = None,
    end: Annotated[ApiTime | None, Query(alias="to")] = None,
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
