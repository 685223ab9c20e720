"""The operator's HTTP API under ``/admin``: organizations, access keys, credits, plans, usage.

Every route requires ``SPU_ADMIN_TOKEN`` (see ``proxy.admin.auth``) and
answers errors in the gateway's one error shape (type, code, message).
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from ledger import (
    NO_LIMITS,
    AccessKey,
    AccountNotFound,
    Balance,
    BudgetPeriod,
    CreditTransaction,
    IdempotencyConflict,
    KeyBudgetUse,
    KeyLimits,
    LedgerUnavailable,
    format_spus,
    spus_to_units,
)
from proxy import org_admin
from proxy.admin.auth import require_admin
from proxy.admin.schemas import (
    AccessKeyCreate,
    AccessKeyCreated,
    AccessKeyLimitsUpdate,
    AccessKeyList,
    AccessKeyView,
    BalanceView,
    CreditGrant,
    CreditTransactionList,
    CreditTransactionView,
    ErrorBody,
    GrantCreate,
    KeyLimitsFields,
    Organization,
    OrganizationCreate,
    OrganizationList,
    PlanSet,
    UsageRecordList,
    UsageRecordView,
    UsageTotalList,
    UsageTotalView,
)
from proxy.api_time import ApiTime
from proxy.auth import issue_token
from proxy.errors import ApiError, bad_request, ledger_unavailable
from proxy.gateway import gateway_of
from proxy.ledger_json import (
    balance_json,
    key_budget_json,
    key_limits_json,
    usage_record_json,
    usage_total_json,
)
from proxy.usage.window import open_window, usage_window

ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": meaning}
    for status, meaning in (
        (400, "Invalid request"),
        (401, "No admin token"),
        (403, "Wrong admin token, an org token, or the admin API is disabled"),
        (404, "No such organization or key"),
        (409, "Idempotency key reused with different content"),
        (503, "Ledger unavailable"),
    )
}
router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=ADMIN_RESPONSES,
)

MAX_LIST_LIMIT = 100


@contextmanager
def ledger_errors() -> Iterator[None]:
    """Turn typed ledger failures into client errors at one place."""
    try:
        yield
    except AccountNotFound as error:
        raise ApiError(
            404, f"No organization '{error.org_id}'.", code="organization_not_found"
        ) from error
    except IdempotencyConflict as error:
        raise ApiError(
            409, str(error), error_type="idempotency_error", code="idempotency_conflict"
        ) from error
    except LedgerUnavailable as error:
        raise ledger_unavailable() from error


def _balance(balance: Balance) -> BalanceView:
    return BalanceView.model_validate(balance_json(balance))


def _organization(balance: Balance) -> Organization:
    account = balance.account
    return Organization(
        org_id=account.org_id,
        user_id=account.user_id,
        user_name=account.user_name,
        user_email=account.user_email,
        stripe_customer_id=account.stripe_customer_id,
        renews_locally=account.renews_locally,
        created_at=account.created_at,
        balance=_balance(balance),
    )


def _access_key(key: AccessKey, budget: KeyBudgetUse | None = None) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "org_id": key.org_id,
        "prefix": key.prefix,
        "name": key.name,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        **key_limits_json(key.limits),
        "budget": None if budget is None else key_budget_json(budget),
    }


def _key_limits(body: KeyLimitsFields, current: KeyLimits = NO_LIMITS) -> KeyLimits:
    """The limits a create or update asks for: the fields it sent over ``current``."""
    sent = body.model_fields_set
    budget_units = current.budget_units
    if "budget_spus" in sent:
        try:
            budget_units = None if body.budget_spus is None else spus_to_units(body.budget_spus)
        except ValueError as error:
            raise bad_request(str(error), param="budget_spus") from error
    return KeyLimits(
        budget_units=budget_units,
        budget_period=(
            BudgetPeriod(body.budget_period) if "budget_period" in sent else current.budget_period
        ),
        rpm=body.rpm if "rpm" in sent else current.rpm,
        tpm=body.tpm if "tpm" in sent else current.tpm,
    )


def _key_not_found(org_id: str, key_id: str) -> ApiError:
    return ApiError(
        404, f"No access key '{key_id}' for organization '{org_id}'.", code="access_key_not_found"
    )


def _credit_transaction(transaction: CreditTransaction) -> CreditTransactionView:
    return CreditTransactionView(
        transaction_id=transaction.transaction_id,
        kind=transaction.kind.value,
        spus=format_spus(transaction.amount_units),
        debt_paid_spus=format_spus(transaction.debt_paid_units),
        reason=transaction.reason,
        created_at=transaction.created_at,
    )


@router.post("/organizations", status_code=201, response_model=Organization)
async def create_organization(
    body: OrganizationCreate, request: Request, response: Response
) -> Organization:
    """Create an org with the free-tier grant; an existing org is returned unchanged (200)."""
    gateway = gateway_of(request)
    with ledger_errors():
        _, created = await org_admin.create_organization(
            gateway.store,
            body.org_id,
            free_grant_units=gateway.free_grant_units,
            user_id=body.user_id,
            user_name=body.user_name,
            user_email=body.user_email,
        )
        balance = await gateway.store.balance(body.org_id)
    if not created:
        response.status_code = 200
    return _organization(balance)


@router.get("/organizations", response_model=OrganizationList)
async def list_organizations(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 20,
    starting_after: Annotated[str, Query(description="Last org_id of the previous page.")] = "",
) -> OrganizationList:
    store = gateway_of(request).store
    with ledger_errors():
        accounts = await store.list_accounts(limit=limit + 1, after_org_id=starting_after)
        page = accounts[:limit]
        balances = await asyncio.gather(*(store.balance(account.org_id) for account in page))
    return OrganizationList(
        data=[_organization(balance) for balance in balances], has_more=len(accounts) > limit
    )


@router.get("/organizations/{org_id}", response_model=Organization)
async def get_organization(request: Request, org_id: str) -> Organization:
    with ledger_errors():
        balance = await gateway_of(request).store.balance(org_id)
    return _organization(balance)


@router.get("/organizations/{org_id}/balance", response_model=BalanceView)
async def get_balance(request: Request, org_id: str) -> BalanceView:
    with ledger_errors():
        balance = await gateway_of(request).store.balance(org_id)
    return _balance(balance)


@router.post("/organizations/{org_id}/keys", status_code=201, response_model=AccessKeyCreated)
async def create_access_key(
    request: Request, org_id: str, body: AccessKeyCreate | None = None
) -> AccessKeyCreated:
    """Issue an access token; the response is the only time the token itself is shown."""
    body = body or AccessKeyCreate()
    limits = _key_limits(body)
    with ledger_errors():
        token, key = await issue_token(
            gateway_of(request).store,
            org_id,
            name=body.name,
            expires_at=body.expires_at,
            limits=limits,
        )
        budgets = await gateway_of(request).store.key_budget_use(org_id)
    return AccessKeyCreated(token=token, **_access_key(key, _budget_of(key, budgets)))


def _budget_of(key: AccessKey, budgets: list[KeyBudgetUse]) -> KeyBudgetUse | None:
    return next((use for use in budgets if use.key_id == key.key_id), None)


@router.get("/organizations/{org_id}/keys", response_model=AccessKeyList)
async def list_access_keys(request: Request, org_id: str) -> AccessKeyList:
    """The org's keys with their limits, and where each budget stands in its window."""
    store = gateway_of(request).store
    with ledger_errors():
        await store.get_account(org_id)
        keys = await store.list_access_keys(org_id)
        budgets = await store.key_budget_use(org_id)
    return AccessKeyList(
        data=[AccessKeyView(**_access_key(key, _budget_of(key, budgets))) for key in keys]
    )


@router.patch("/organizations/{org_id}/keys/{key_id}", response_model=AccessKeyView)
async def update_access_key_limits(
    request: Request, org_id: str, key_id: str, body: AccessKeyLimitsUpdate
) -> AccessKeyView:
    """Change a key's limits; fields left out keep their value, null removes a limit.

    A budget counts what the key already settled in its current window. The
    ledger reads a key's limits in every hold, so every worker applies the change
    to its next call.
    """
    store = gateway_of(request).store
    with ledger_errors():
        current = next(
            (k for k in await store.list_access_keys(org_id) if k.key_id == key_id), None
        )
        if current is None:
            await store.get_account(org_id)
            raise _key_not_found(org_id, key_id)
        key = await store.set_key_limits(org_id, key_id, _key_limits(body, current.limits))
        if key is None:
            raise _key_not_found(org_id, key_id)
        budgets = await store.key_budget_use(org_id)
    return AccessKeyView(**_access_key(key, _budget_of(key, budgets)))


@router.delete("/organizations/{org_id}/keys/{key_id}", response_model=AccessKeyView)
async def revoke_access_key(request: Request, org_id: str, key_id: str) -> AccessKeyView:
    """Revoke at once on this worker; other workers stop accepting it within their cache TTL."""
    gateway = gateway_of(request)
    with ledger_errors():
        key = await gateway.store.revoke_access_key(org_id, key_id)
    if key is None:
        raise _key_not_found(org_id, key_id)
    gateway.auth.forget(key.token_sha256)
    return AccessKeyView(**_access_key(key))


@router.post("/organizations/{org_id}/credit_grants", status_code=201, response_model=CreditGrant)
async def grant_credits(
    request: Request,
    response: Response,
    org_id: str,
    body: GrantCreate,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> CreditGrant:
    """Grant credits with a reason; a retry with the same idempotency key grants once (200)."""
    store = gateway_of(request).store
    with ledger_errors():
        try:
            result = await org_admin.grant_credits(
                store,
                org_id,
                body.spus,
                body.reason,
                idempotency_key=body.idempotency_key or idempotency_key,
            )
        except ValueError as error:
            raise bad_request(str(error), param="spus") from error
        balance = await store.balance(org_id)
    if not result.applied:
        response.status_code = 200
    transaction = result.transaction
    return CreditGrant(
        transaction_id=transaction.transaction_id,
        org_id=org_id,
        spus=format_spus(transaction.amount_units),
        reason=transaction.reason,
        applied=result.applied,
        created_at=transaction.created_at,
        balance=_balance(balance),
    )


@router.get("/organizations/{org_id}/credit_transactions", response_model=CreditTransactionList)
async def list_credit_transactions(
    request: Request, org_id: str, limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50
) -> CreditTransactionList:
    store = gateway_of(request).store
    with ledger_errors():
        await store.get_account(org_id)
        transactions = await store.credit_transactions(org_id, limit=limit)
    return CreditTransactionList(data=[_credit_transaction(item) for item in transactions])


@router.put("/organizations/{org_id}/plan", response_model=Organization)
async def set_plan(request: Request, org_id: str, body: PlanSet) -> Organization:
    """Set an Enterprise plan by hand: an allowance per period, renewed by the ledger itself."""
    store = gateway_of(request).store
    try:
        allowance_units = spus_to_units(body.allowance_spus)
    except ValueError as error:
        raise bad_request(str(error), param="allowance_spus") from error
    with ledger_errors():
        account = await store.get_account(org_id)
        plan = org_admin.hand_set_plan(
            account,
            tier=body.tier,
            allowance_units=allowance_units,
            period_days=body.period_days,
            period_start=body.period_start,
            now=datetime.now(UTC),
        )
        await store.set_subscription(org_id, plan)
        balance = await store.balance(org_id)
    return _organization(balance)


@router.delete("/organizations/{org_id}/plan", response_model=Organization)
async def end_plan(request: Request, org_id: str) -> Organization:
    """End the plan: unused allowance lapses; purchased and granted credits stay."""
    store = gateway_of(request).store
    with ledger_errors():
        await store.clear_subscription(org_id, as_of=datetime.now(UTC))
        balance = await store.balance(org_id)
    return _organization(balance)


@router.get("/organizations/{org_id}/usage", response_model=UsageTotalList)
async def org_usage(
    request: Request,
    org_id: str,
    start: Annotated[ApiTime | None, Query(alias="from")] = None,
    end: Annotated[ApiTime | None, Query(alias="to")] = None,
    group_by: Literal["model", "day", "key"] = "model",
) -> UsageTotalList:
    """An org's usage totals over a window (default: the last 30 days)."""
    window = usage_window(start, end, now=datetime.now(UTC))
    store = gateway_of(request).store
    with ledger_errors():
        await store.get_account(org_id)
        totals = await store.usage_totals(org_id, group_by, start=window.start, end=window.end)
    return UsageTotalList(
        org_id=org_id,
        group_by=group_by,
        start=window.start,
        end=window.end,
        data=[UsageTotalView(group=total.group, **usage_total_json(total)) for total in totals],
    )


@router.get("/usage", response_model=UsageRecordList)
async def recent_usage(
    request: Request,
    org_id: str | None = None,
    model: str | None = None,
    start: Annotated[ApiTime | None, Query(alias="from")] = None,
    end: Annotated[ApiTime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
) -> UsageRecordList:
    """Recent usage records across orgs, newest first, filtered by org, model and window."""
    since, until = open_window(start, end)
    with ledger_errors():
        records = await gateway_of(request).store.usage_records(
            org_id, start=since, end=until, limit=limit, model=model
        )
    return UsageRecordList(
        data=[UsageRecordView.model_validate(usage_record_json(record)) for record in records]
    )
