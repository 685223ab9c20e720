"""Request and response bodies of the admin API, so ``/openapi.json`` documents every field.

SPU amounts travel as decimal strings (exact, never floats), as on ``/v1/balance``;
the ledger's integer units stay inside the gateway. A body that shows a ledger
object is named after it with ``View`` (``BalanceView`` shows a ``ledger.Balance``).
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, HttpUrl

from ledger import units_to_spus
from ledger.checks import MAX_UNITS
from proxy.api_time import ApiTime
from proxy.org_admin import ORG_ID_PATTERN

MAX_PERIOD_DAYS = 366
MAX_SPUS = units_to_spus(MAX_UNITS)
"""The most SPUs one grant or allowance may carry: the ledger's bound on one operation."""


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """Every admin error: a type, a machine-readable code and a human message."""

    error: ErrorDetail


class OrganizationCreate(BaseModel):
    org_id: str = Field(pattern=ORG_ID_PATTERN, description="Your stable id for the org.")
    user_id: str | None = Field(default=None, max_length=200)
    user_name: str | None = Field(default=None, max_length=200)
    user_email: str | None = Field(default=None, max_length=320)


class Bucket(BaseModel):
    total: str
    used: str
    left: str


class Buckets(BaseModel):
    subscription: Bucket
    purchased: Bucket
    granted: Bucket


class Plan(BaseModel):
    tier: str
    status: str | None
    period_start: datetime | None
    period_end: datetime | None


class BalanceView(BaseModel):
    object: Literal["balance"] = "balance"
    org_id: str
    available_spus: str = Field(description="Buckets minus debt minus open holds.")
    held_spus: str
    debt_spus: str
    buckets: Buckets
    plan: Plan


class Organization(BaseModel):
    object: Literal["organization"] = "organization"
    org_id: str
    user_id: str | None
    user_name: str | None
    user_email: str | None
    stripe_customer_id: str | None
    renews_locally: bool = Field(description="True for plans set by hand (Enterprise).")
    created_at: datetime
    balance: BalanceView


class OrganizationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Organization]
    has_more: bool


BudgetPeriodName = Literal["day", "week", "month", "total"]
MAX_RATE_LIMIT = 10**9


class KeyLimitsFields(BaseModel):
    """A key's own limits; every field may be null for no limit."""

    budget_spus: Decimal | None = Field(
        default=None,
        ge=0,
        le=MAX_SPUS,
        description="SPUs the key may spend per budget window, as a decimal string; null: none.",
    )
    budget_period: BudgetPeriodName = Field(
        default="total",
        description="The budget window: a day, a week or a calendar month from the key's"
        " creation (UTC), or the key's whole life.",
    )
    rpm: int | None = Field(
        default=None, ge=1, le=MAX_RATE_LIMIT, description="Calls admitted per minute."
    )
    tpm: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RATE_LIMIT,
        description="Tokens per minute, each call counted at its worst case until it settles.",
    )


class AccessKeyCreate(KeyLimitsFields):
    name: str | None = Field(default=None, max_length=200)
    expires_at: ApiTime | None = None


class AccessKeyLimitsUpdate(KeyLimitsFields):
    """Only the fields sent change; send null to remove a limit."""


class KeyBudgetView(BaseModel):
    window_start: datetime
    window_end: datetime | None = Field(description="Null for a total budget.")
    spent_spus: str = Field(description="Settled in this window.")
    held_spus: str = Field(description="Reserved by the key's calls in flight.")
    left_spus: str


class AccessKeyView(BaseModel):
    object: Literal["access_key"] = "access_key"
    key_id: str
    org_id: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    budget_spus: str | None
    budget_period: BudgetPeriodName
    rpm: int | None
    tpm: int | None
    budget: KeyBudgetView | None = Field(
        default=None, description="Where a key with a budget stands in its current window."
    )


class AccessKeyCreated(AccessKeyView):
    token: str = Field(description="The access token itself: shown this once, never again.")


class AccessKeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AccessKeyView]


class GrantCreate(BaseModel):
    spus: Decimal = Field(
        gt=0, le=MAX_SPUS, description="SPUs to grant (up to six decimal places)."
    )
    reason: str = Field(min_length=1, max_length=200)
    idempotency_key: str | None = Field(
        default=None,
        max_length=200,
        description="Retry-safe id; the Idempotency-Key header is used when absent.",
    )


class CreditGrant(BaseModel):
    object: Literal["credit_grant"] = "credit_grant"
    transaction_id: str
    org_id: str
    spus: str
    reason: str
    applied: bool = Field(description="False when this idempotency key had already granted.")
    created_at: datetime
    balance: BalanceView


class CreditTransactionView(BaseModel):
    object: Literal["credit_transaction"] = "credit_transaction"
    transaction_id: str
    kind: str
    spus: str
    debt_paid_spus: str
    reason: str
    created_at: datetime


class CreditTransactionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CreditTransactionView]


class PlanSet(BaseModel):
    tier: str = Field(default="enterprise", min_length=1, max_length=64)
    allowance_spus: Decimal = Field(ge=0, le=MAX_SPUS, description="SPUs included in every period.")
    period_days: int = Field(default=30, ge=1, le=MAX_PERIOD_DAYS)
    period_start: ApiTime | None = Field(
        default=None,
        description="Defaults to the start of the org's current period if it has one, else now;"
        " a later start begins a new period (the allowance is reset).",
    )


class UsageSplit(BaseModel):
    subscription: str
    purchased: str
    granted: str
    debt: str


class UsageRecordView(BaseModel):
    object: Literal["usage_record"] = "usage_record"
    request_id: str
    org_id: str
    key_id: str | None
    model: str
    provider: str
    operation: str
    source: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: str
    spus: str
    split: UsageSplit
    latency_ms: int
    status: str
    created_at: datetime


class UsageRecordList(BaseModel):
    object: Literal["list"] = "list"
    data: list[UsageRecordView]


class UsageTotalView(BaseModel):
    group: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: str
    spus: str


class UsageTotalList(BaseModel):
    object: Literal["list"] = "list"
    org_id: str
    group_by: Literal["model", "day", "key"]
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    data: list[UsageTotalView]


class AlertSettingsSet(BaseModel):
    url: HttpUrl = Field(description="Where alerts are POSTed (signed JSON events).")
    thresholds_spus: list[Annotated[Decimal, Field(gt=0, le=MAX_SPUS)]] = Field(
        default_factory=list,
        max_length=10,
        description="balance.low is sent once each time the balance falls below one of these;"
        " balance.depleted always, when it reaches zero.",
    )


class AlertSettingsView(BaseModel):
    object: Literal["alert_settings"] = "alert_settings"
    org_id: str
    url: str
    thresholds_spus: list[str]
    signing_secret: str | None = Field(
        default=None,
        description="Signs every delivery (spu-signature); shown only when it is made.",
    )


class AlertEventView(BaseModel):
    object: Literal["alert_event"] = "alert_event"
    id: str
    type: str
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    last_error: str | None
    created: datetime
    data: dict[str, str | None]


class AlertEventList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AlertEventView]


class AutoRechargeSet(BaseModel):
    threshold_spus: Decimal = Field(
        gt=0, le=MAX_SPUS, description="Recharge when the balance falls below."
    )
    amount_spus: Decimal = Field(gt=0, le=MAX_SPUS, description="SPUs each recharge buys.")
    monthly_cap_spus: Decimal = Field(
        ge=0, le=MAX_SPUS, description="The most recharges may buy in one calendar month (UTC)."
    )


class RechargeView(BaseModel):
    recharge_id: str
    amount_spus: str
    state: Literal["pending", "succeeded", "failed"]
    payment_intent: str | None
    reason: str | None
    created_at: datetime


class AutoRechargeView(BaseModel):
    object: Literal["auto_recharge"] = "auto_recharge"
    org_id: str
    threshold_spus: str
    amount_spus: str
    monthly_cap_spus: str
    recent: list[RechargeView] = Field(description="The latest recharges, newest first.")
