"""What handling a webhook event did: answered to Stripe, logged, and counted by
``spu_webhook_events_total{type,outcome}``, so its values are few and fixed."""

from enum import StrEnum


class Outcome(StrEnum):
    DUPLICATE = "duplicate"
    """The event id was handled before: nothing is done again."""
    IGNORED = "ignored"
    """An event type the gateway does not handle."""
    FAILED = "failed"
    """The handler raised: answered 500, so Stripe delivers the event again."""
    CATALOGUE_REFRESHED = "catalogue_refreshed"

    CREDITED = "credited"
    ALREADY_CREDITED = "already_credited"
    NOT_PAID_YET = "not_paid_yet"
    """A delayed payment: credited by its ``async_payment_succeeded`` event."""
    NOT_A_CREDIT_PURCHASE = "not_a_credit_purchase"
    NO_CREDITS_BOUGHT = "no_credits_bought"
    """A credit session whose line items hold no credit price of the catalogue's product."""

    PLAN_SET = "plan_set"
    PLAN_ENDED = "plan_ended"
    NO_PLAN = "no_plan"
    PLAN_MANAGED_BY_OPERATOR = "plan_managed_by_operator"
    """An Enterprise plan set by hand: Stripe subscriptions do not change it."""
    NOT_A_SUBSCRIPTION_INVOICE = "not_a_subscription_invoice"
    NO_CUSTOMER = "no_customer"
    UNKNOWN_CUSTOMER = "unknown_customer"
    """A customer that belongs to no org."""

    RECHARGE_CREDITED = "recharge_credited"
    RECHARGE_FAILED = "recharge_failed"
    RECHARGE_NOT_PENDING = "recharge_not_pending"
    """A succeeded PaymentIntent whose recharge had failed (logged: it should not happen)."""
    NOT_A_RECHARGE = "not_a_recharge"
    """A PaymentIntent that no auto-recharge made (Checkout's are credited by their session)."""

    REFUNDS_TAKEN_BACK = "refunds_taken_back"
    DISPUTE_TAKEN_BACK = "dispute_taken_back"
    NOTHING_TO_TAKE_BACK = "nothing_to_take_back"
    """Every refund or the dispute was taken back before, or nothing is left to take."""
    NO_CHARGE = "no_charge"
    """A dispute that names no charge."""
