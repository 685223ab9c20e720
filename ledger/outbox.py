"""Balance watches and the outbox: what a settlement that crosses a threshold leaves behind.

An org with alerts or auto-recharge has watches: a threshold each, armed
until the balance (its buckets less its debt; open holds are reservations
that mostly come back, so they do not count) falls below it. The settlement
that makes it fall disarms the watch and, in its own transaction, writes what
must follow to the outbox: an alert to deliver, or a recharge to start. A
credit that lifts the balance back to a threshold re-arms its watch. So every
crossing is written exactly once, however many settlements race, and is never
lost to a crash; workers then deliver each outbox row at least once.

Pure rules here; every backend keeps the rows its own way.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from ledger.clock import from_ms, to_ms


class WatchKind(StrEnum):
    LOW = "low"
    """``balance.low`` at one of the alert thresholds."""
    DEPLETED = "depleted"
    """``balance.depleted``: nothing left (a threshold of one unit)."""
    RECHARGE = "recharge"
    """Start an auto-recharge."""


DEPLETED_THRESHOLD_UNITS = 1
"""The balance is depleted when it falls below one unit: zero, or in debt."""


class OutboxTopic(StrEnum):
    ALERT = "alert"
    """Delivered to the org's alert URL."""
    RECHARGE = "recharge"
    """A PaymentIntent to create on the org's saved card."""


class EventKind(StrEnum):
    BALANCE_LOW = "balance.low"
    BALANCE_DEPLETED = "balance.depleted"
    RECHARGE_SUCCEEDED = "auto_recharge.succeeded"
    RECHARGE_FAILED = "auto_recharge.failed"
    RECHARGE_START = "auto_recharge.start"
    """The recharge topic's one kind: not an alert."""


class OutboxState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    """Out of attempts: kept for operators, who may send it again."""


class RechargeState(StrEnum):
    PENDING = "pending"
    """Counted against the monthly cap until it succeeds or fails."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Watch:
    kind: WatchKind
    threshold_units: int
    armed: bool


@dataclass(frozen=True, slots=True)
class AlertSettings:
    org_id: str
    url: str
    secret: str
    """Signs every delivery (``spu-signature``); shown once, when it is made."""
    thresholds_units: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AutoRecharge:
    threshold_units: int
    amount_units: int
    monthly_cap_units: int


@dataclass(frozen=True, slots=True)
class Recharge:
    recharge_id: str
    org_id: str
    amount_units: int
    state: RechargeState
    payment_intent_id: str | None
    reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    event_id: str
    org_id: str
    topic: OutboxTopic
    kind: EventKind
    balance_units: int
    """The balance the event reports (after the settlement, or after the credit)."""
    created_at: datetime
    threshold_units: int | None = None
    amount_units: int | None = None
    reference: str | None = None
    """The recharge id (recharge topic), or the PaymentIntent id (recharge alerts)."""
    reason: str | None = None
    state: OutboxState = OutboxState.PENDING
    attempts: int = 0
    last_error: str | None = None


def crossed(watches: Iterable[Watch], balance_units: int) -> list[Watch]:
    """The armed watches a balance of ``balance_units`` has fallen below, highest first."""
    fallen = [w for w in watches if w.armed and balance_units < w.threshold_units]
    return sorted(fallen, key=lambda w: (-w.threshold_units, w.kind.value))


def rearmed(watches: Iterable[Watch], balance_units: int) -> list[Watch]:
    """The disarmed watches a balance of ``balance_units`` has come back up to."""
    return [w for w in watches if not w.armed and balance_units >= w.threshold_units]


def floor_units(watches: Iterable[Watch]) -> int | None:
    """The highest armed threshold: a settlement leaving the balance below it must look at
    the watches; None when none is armed (the common path never looks)."""
    return max((w.threshold_units for w in watches if w.armed), default=None)


def alert_watches(thresholds_units: Iterable[int]) -> list[Watch]:
    """Armed watches for the alert thresholds, and ``balance.depleted``."""
    low = [Watch(WatchKind.LOW, units, True) for units in sorted(set(thresholds_units))]
    return [*low, Watch(WatchKind.DEPLETED, DEPLETED_THRESHOLD_UNITS, True)]


def month_start_ms(now_ms: int) -> int:
    """The start of the UTC calendar month of ``now_ms``: the monthly cap's period."""
    now = from_ms(now_ms)
    return to_ms(datetime(now.year, now.month, 1, tzinfo=UTC))


def within_cap(recharged_units: int, amount_units: int, cap_units: int) -> bool:
    """Whether one more recharge keeps the month's recharges (pending or succeeded) at the cap."""
    return recharged_units + amount_units <= cap_units


def watch_event(
    watch: Watch, org_id: str, request_id: str, balance_units: int, now_ms: int
) -> OutboxEvent:
    """The alert a crossed low or depleted watch sends; its id names the crossing."""
    kind = EventKind.BALANCE_LOW if watch.kind is WatchKind.LOW else EventKind.BALANCE_DEPLETED
    return OutboxEvent(
        event_id=f"{kind.value}:{watch.threshold_units}:{request_id}",
        org_id=org_id,
        topic=OutboxTopic.ALERT,
        kind=kind,
        balance_units=balance_units,
        created_at=from_ms(now_ms),
        threshold_units=watch.threshold_units,
    )


def recharge_id_for(request_id: str) -> str:
    """A recharge is named by the settlement that crossed: its Stripe idempotency key too."""
    return f"rch_{request_id}"


MONTHLY_CAP_REACHED = "monthly_cap_reached"


def recharge_start(
    org_id: str,
    request_id: str,
    settings: AutoRecharge,
    recharged_units: int,
    balance_units: int,
    now_ms: int,
) -> tuple[Recharge, OutboxEvent]:
    """What the crossing settlement of ``request_id`` starts: a pending recharge and the event
    that starts it, or, past the month's cap (``recharged_units`` so far), a failed one and
    its alert."""
    recharge_id = recharge_id_for(request_id)
    amount = settings.amount_units
    if within_cap(recharged_units, amount, settings.monthly_cap_units):
        start = OutboxEvent(
            recharge_id,
            org_id,
            OutboxTopic.RECHARGE,
            EventKind.RECHARGE_START,
            balance_units,
            from_ms(now_ms),
            settings.threshold_units,
            amount,
            recharge_id,
        )
        pending = Recharge(
            recharge_id, org_id, amount, RechargeState.PENDING, None, None, from_ms(now_ms)
        )
        return pending, start
    failed = Recharge(
        recharge_id,
        org_id,
        amount,
        RechargeState.FAILED,
        None,
        MONTHLY_CAP_REACHED,
        from_ms(now_ms),
    )
    alert = recharge_failed_event(
        recharge_id, org_id, amount, balance_units, None, MONTHLY_CAP_REACHED, now_ms
    )
    return failed, alert


def recharge_credit_id(recharge: Recharge) -> str:
    """The credit transaction a paid recharge is credited under, once."""
    return f"auto_recharge:{recharge.recharge_id}"


def recharge_credit_reason(payment_intent_id: str) -> str:
    return f"auto-recharge {payment_intent_id}"


def recharge_failed_event(
    recharge_id: str,
    org_id: str,
    amount_units: int,
    balance_units: int,
    payment_intent_id: str | None,
    reason: str,
    now_ms: int,
) -> OutboxEvent:
    return OutboxEvent(
        f"{EventKind.RECHARGE_FAILED.value}:{recharge_id}",
        org_id,
        OutboxTopic.ALERT,
        EventKind.RECHARGE_FAILED,
        balance_units,
        from_ms(now_ms),
        amount_units=amount_units,
        reference=payment_intent_id,
        reason=reason,
    )


def recharge_succeeded_event(
    recharge: Recharge, balance_units: int, payment_intent_id: str, now_ms: int
) -> OutboxEvent:
    return OutboxEvent(
        f"{EventKind.RECHARGE_SUCCEEDED.value}:{recharge.recharge_id}",
        recharge.org_id,
        OutboxTopic.ALERT,
        EventKind.RECHARGE_SUCCEEDED,
        balance_units,
        from_ms(now_ms),
        amount_units=recharge.amount_units,
        reference=payment_intent_id,
    )
