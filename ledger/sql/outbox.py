"""Balance watches, alert and auto-recharge settings, recharges and the outbox, as routines
both SQL backends run (the rules are ``ledger.outbox``).

``settle`` calls ``crossings`` in its own transaction when the balance it
leaves is below the account's ``watch_floor_units``; credits call ``rearm``.
The outbox is claimed with a lease: a claimed row is not handed to another
worker until the lease ends, so workers do not send it twice while it is being
delivered, and a worker that dies mid-delivery only delays it.
"""

from collections.abc import Sequence

from ledger.clock import from_ms
from ledger.outbox import (
    AlertSettings,
    AutoRecharge,
    EventKind,
    OutboxEvent,
    OutboxState,
    OutboxTopic,
    Recharge,
    RechargeState,
    Watch,
    WatchKind,
    alert_watches,
    crossed,
    floor_units,
    month_start_ms,
    rearmed,
    recharge_failed_event,
    recharge_start,
    recharge_succeeded_event,
    watch_event,
)
from ledger.sql.dialect import SQLITE_INSERTION_ORDER
from ledger.sql.reads import load_account
from ledger.sql.routine import Command, Params, Query, Routine, Row

OUTBOX_COLUMNS = (
    "event_id, org_id, topic, kind, balance_units, created_at_ms, threshold_units,"
    " amount_units, reference, reason, state, attempts, last_error"
)
RECHARGE_COLUMNS = (
    "recharge_id, org_id, amount_units, state, payment_intent_id, reason, created_at_ms"
)
MAX_ERROR_CHARS = 500

_WATCHES_SQL = Query(
    "SELECT kind, threshold_units, armed FROM balance_watches WHERE org_id = ?1"
    " ORDER BY threshold_units DESC, kind"
)
_ARM_SQL = Command(
    "UPDATE balance_watches SET armed = ?1 WHERE org_id = ?2 AND kind = ?3 AND threshold_units = ?4"
)
_FLOOR_SQL = Command("UPDATE accounts SET watch_floor_units = ?1 WHERE org_id = ?2")
_INSERT_WATCH_SQL = Command(
    "INSERT INTO balance_watches (org_id, kind, threshold_units, armed) VALUES (?1, ?2, ?3, ?4)"
)
_INSERT_EVENT_SQL = Command(
    f"INSERT INTO outbox ({OUTBOX_COLUMNS}, next_attempt_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
    " ?7, ?8, ?9, ?10, 'pending', 0, NULL, ?6) ON CONFLICT DO NOTHING"
)
_ALERTS_SQL = Query("SELECT url, secret FROM alert_settings WHERE org_id = ?1")
_RECHARGE_SETTINGS_SQL = Query(
    "SELECT threshold_units, amount_units, monthly_cap_units FROM auto_recharge_settings"
    " WHERE org_id = ?1"
)
_RECHARGED_SQL = Query(
    "SELECT COALESCE(SUM(amount_units), 0) FROM recharges WHERE org_id = ?1"
    " AND month_start_ms = ?2 AND state <> 'failed'"
)
_INSERT_RECHARGE_SQL = Command(
    f"INSERT INTO recharges ({RECHARGE_COLUMNS}, month_start_ms, ended_at_ms)"
    " VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING"
)
_RECHARGE_SQL = Query(f"SELECT {RECHARGE_COLUMNS} FROM recharges WHERE recharge_id = ?1")
_CLAIM_SQL = Query(
    "UPDATE outbox SET claimed_until_ms = ?1 WHERE event_id IN (SELECT event_id FROM outbox"
    " WHERE topic = ?2 AND state = 'pending' AND next_attempt_at_ms <= ?3"
    " AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?3)"
    " ORDER BY next_attempt_at_ms LIMIT ?4)"
    " AND state = 'pending' AND (claimed_until_ms IS NULL OR claimed_until_ms <= ?3)"
    f" RETURNING {OUTBOX_COLUMNS}"
)
_EVENTS_SQL = Query(
    f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE org_id = ?1 AND topic = 'alert'"
    " AND (CAST(?2 AS TEXT) IS NULL OR state = ?2)"
    f" ORDER BY created_at_ms DESC, {SQLITE_INSERTION_ORDER} DESC LIMIT ?3"
)
_RECHARGES_SQL = Query(
    f"SELECT {RECHARGE_COLUMNS} FROM recharges WHERE org_id = ?1"
    f" ORDER BY created_at_ms DESC, {SQLITE_INSERTION_ORDER} DESC LIMIT ?2"
)


def event_from_row(row: Row) -> OutboxEvent:
    return OutboxEvent(
        event_id=row[0],
        org_id=row[1],
        topic=OutboxTopic(row[2]),
        kind=EventKind(row[3]),
        balance_units=int(row[4]),
        created_at=from_ms(row[5]),
        threshold_units=row[6],
        amount_units=row[7],
        reference=row[8],
        reason=row[9],
        state=OutboxState(row[10]),
        attempts=int(row[11]),
        last_error=row[12],
    )


def _recharge_from_row(row: Row) -> Recharge:
    return Recharge(
        row[0], row[1], int(row[2]), RechargeState(row[3]), row[4], row[5], from_ms(row[6])
    )


def insert_event(event: OutboxEvent, now_ms: int) -> tuple[Command, Params]:
    """An outbox row, once per event id (a replayed routine writes nothing new)."""
    return (
        _INSERT_EVENT_SQL,
        (
            event.event_id,
            event.org_id,
            event.topic.value,
            event.kind.value,
            event.balance_units,
            now_ms,
            event.threshold_units,
            event.amount_units,
            event.reference,
            event.reason,
        ),
    )


def _watches(org_id: str) -> Routine[list[Watch]]:
    rows = yield _WATCHES_SQL, (org_id,)
    return [Watch(WatchKind(kind), int(units), bool(armed)) for kind, units, armed in rows]


def _arm(org_id: str, watch: Watch, armed: bool) -> tuple[Command, Params]:
    return _ARM_SQL, (armed, org_id, watch.kind.value, watch.threshold_units)


def _alerts_configured(org_id: str) -> Routine[bool]:
    return bool((yield _ALERTS_SQL, (org_id,)))


def crossings(org_id: str, request_id: str, balance_units: int, now_ms: int) -> Routine[None]:
    """What the settlement of ``request_id`` leaves behind for each watch it crossed."""
    watches = yield from _watches(org_id)
    fallen = crossed(watches, balance_units)
    alerts = yield from _alerts_configured(org_id)
    for watch in fallen:
        yield _arm(org_id, watch, False)
        if watch.kind is WatchKind.RECHARGE:
            yield from _start_recharge(org_id, request_id, balance_units, alerts, now_ms)
        elif alerts:
            yield insert_event(
                watch_event(watch, org_id, request_id, balance_units, now_ms), now_ms
            )
    still_armed = [w for w in watches if w not in fallen]
    yield _FLOOR_SQL, (floor_units(still_armed), org_id)


def _start_recharge(
    org_id: str, request_id: str, balance_units: int, alerts: bool, now_ms: int
) -> Routine[None]:
    rows = yield _RECHARGE_SETTINGS_SQL, (org_id,)
    if not rows:
        return
    settings = AutoRecharge(*(int(value) for value in rows[0]))
    month_ms = month_start_ms(now_ms)
    recharged = int((yield _RECHARGED_SQL, (org_id, month_ms))[0][0])
    recharge, event = recharge_start(org_id, request_id, settings, recharged, balance_units, now_ms)
    yield (
        _INSERT_RECHARGE_SQL,
        (
            recharge.recharge_id,
            org_id,
            recharge.amount_units,
            recharge.state.value,
            recharge.reason,
            now_ms,
            month_ms,
            None,
        ),
    )
    if event.topic is OutboxTopic.RECHARGE or alerts:
        yield insert_event(event, now_ms)


def rearm(org_id: str, balance_units: int) -> Routine[None]:
    """A credit lifted the balance: re-arm the watches it came back up to."""
    watches = yield from _watches(org_id)
    back = rearmed(watches, balance_units)
    if not back:
        return
    for watch in back:
        yield _arm(org_id, watch, True)
    after = [Watch(w.kind, w.threshold_units, w.armed or w in back) for w in watches]
    yield _FLOOR_SQL, (floor_units(after), org_id)


def _replace_watches(
    org_id: str, kinds: Sequence[WatchKind], new: Sequence[Watch]
) -> Routine[None]:
    placeholders = ", ".join(f"?{n + 2}" for n in range(len(kinds)))
    yield (
        Command(f"DELETE FROM balance_watches WHERE org_id = ?1 AND kind IN ({placeholders})"),
        (org_id, *(kind.value for kind in kinds)),
    )
    for watch in new:
        yield _INSERT_WATCH_SQL, (org_id, watch.kind.value, watch.threshold_units, watch.armed)
    yield _FLOOR_SQL, (floor_units([*new, *(yield from _other_watches(org_id, kinds))]), org_id)


def _other_watches(org_id: str, kinds: Sequence[WatchKind]) -> Routine[list[Watch]]:
    return [w for w in (yield from _watches(org_id)) if w.kind not in kinds]


def set_alerts(
    org_id: str, url: str, thresholds_units: Sequence[int], new_secret: str, now_ms: int
) -> Routine[tuple[AlertSettings, bool]]:
    """Set where alerts go and at which balances; the signing secret is made once."""
    yield from load_account(org_id)
    rows = yield _ALERTS_SQL, (org_id,)
    secret = str(rows[0][1]) if rows else new_secret
    yield (
        Command(
            "INSERT INTO alert_settings (org_id, url, secret, updated_at_ms)"
            " VALUES (?1, ?2, ?3, ?4)"
            " ON CONFLICT (org_id) DO UPDATE SET url = ?2, updated_at_ms = ?4"
        ),
        (org_id, url, secret, now_ms),
    )
    watches = alert_watches(thresholds_units)
    yield from _replace_watches(org_id, (WatchKind.LOW, WatchKind.DEPLETED), watches)
    thresholds = tuple(w.threshold_units for w in watches if w.kind is WatchKind.LOW)
    return AlertSettings(org_id, url, secret, thresholds), not rows


def clear_alerts(org_id: str) -> Routine[bool]:
    yield from load_account(org_id)
    had = bool((yield _ALERTS_SQL, (org_id,)))
    yield Command("DELETE FROM alert_settings WHERE org_id = ?1"), (org_id,)
    yield from _replace_watches(org_id, (WatchKind.LOW, WatchKind.DEPLETED), ())
    return had


def alert_settings(org_id: str) -> Routine[AlertSettings | None]:
    yield from load_account(org_id)
    rows = yield _ALERTS_SQL, (org_id,)
    if not rows:
        return None
    low = [w.threshold_units for w in (yield from _watches(org_id)) if w.kind is WatchKind.LOW]
    return AlertSettings(org_id, str(rows[0][0]), str(rows[0][1]), tuple(sorted(low)))


def set_auto_recharge(org_id: str, settings: AutoRecharge, now_ms: int) -> Routine[AutoRecharge]:
    yield from load_account(org_id)
    yield (
        Command(
            "INSERT INTO auto_recharge_settings (org_id, threshold_units, amount_units,"
            " monthly_cap_units, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
            " ON CONFLICT (org_id) DO UPDATE SET threshold_units = ?2, amount_units = ?3,"
            " monthly_cap_units = ?4, updated_at_ms = ?5"
        ),
        (
            org_id,
            settings.threshold_units,
            settings.amount_units,
            settings.monthly_cap_units,
            now_ms,
        ),
    )
    watch = Watch(WatchKind.RECHARGE, settings.threshold_units, True)
    yield from _replace_watches(org_id, (WatchKind.RECHARGE,), (watch,))
    return settings


def clear_auto_recharge(org_id: str) -> Routine[bool]:
    yield from load_account(org_id)
    had = bool((yield _RECHARGE_SETTINGS_SQL, (org_id,)))
    yield Command("DELETE FROM auto_recharge_settings WHERE org_id = ?1"), (org_id,)
    yield from _replace_watches(org_id, (WatchKind.RECHARGE,), ())
    return had


def auto_recharge(org_id: str) -> Routine[AutoRecharge | None]:
    yield from load_account(org_id)
    rows = yield _RECHARGE_SETTINGS_SQL, (org_id,)
    return AutoRecharge(*(int(value) for value in rows[0])) if rows else None


def claim(topic: OutboxTopic, limit: int, lease_ms: int, now_ms: int) -> Routine[list[OutboxEvent]]:
    rows = yield _CLAIM_SQL, (now_ms + lease_ms, topic.value, now_ms, limit)
    return sorted((event_from_row(row) for row in rows), key=lambda e: (e.created_at, e.event_id))


def delivered(event_id: str, now_ms: int) -> Routine[bool]:
    rows = yield (
        Query(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, ended_at_ms = ?1,"
            " claimed_until_ms = NULL WHERE event_id = ?2 AND state = 'pending' RETURNING 1"
        ),
        (now_ms, event_id),
    )
    return bool(rows)


def failed_attempt(
    event_id: str, error: str, retry_at_ms: int | None, now_ms: int
) -> Routine[OutboxState | None]:
    """One more failed attempt: tried again at ``retry_at_ms``, or dead (None)."""
    state = OutboxState.DEAD if retry_at_ms is None else OutboxState.PENDING
    rows = yield (
        Query(
            "UPDATE outbox SET state = ?1, attempts = attempts + 1, last_error = ?2,"
            " next_attempt_at_ms = COALESCE(?3, next_attempt_at_ms), claimed_until_ms = NULL,"
            " ended_at_ms = CASE WHEN ?1 = 'dead' THEN ?4 ELSE NULL END"
            " WHERE event_id = ?5 AND state = 'pending' RETURNING 1"
        ),
        (state.value, error[:MAX_ERROR_CHARS], retry_at_ms, now_ms, event_id),
    )
    return state if rows else None


def requeue(org_id: str, event_id: str, now_ms: int) -> Routine[bool]:
    """A dead letter sent again, by an operator: pending, due now, attempts counted afresh."""
    rows = yield (
        Query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at_ms = ?1,"
            " claimed_until_ms = NULL, ended_at_ms = NULL"
            " WHERE org_id = ?2 AND event_id = ?3 AND state = 'dead' RETURNING 1"
        ),
        (now_ms, org_id, event_id),
    )
    return bool(rows)


def alert_events(org_id: str, state: OutboxState | None, limit: int) -> Routine[list[OutboxEvent]]:
    yield from load_account(org_id)
    rows = yield _EVENTS_SQL, (org_id, None if state is None else state.value, limit)
    return [event_from_row(row) for row in rows]


def recharges(org_id: str, limit: int) -> Routine[list[Recharge]]:
    rows = yield _RECHARGES_SQL, (org_id, limit)
    return [_recharge_from_row(row) for row in rows]


def recharge_started(recharge_id: str, payment_intent_id: str) -> Routine[bool]:
    rows = yield (
        Query(
            "UPDATE recharges SET payment_intent_id = ?1 WHERE recharge_id = ?2"
            " AND state = 'pending' RETURNING 1"
        ),
        (payment_intent_id, recharge_id),
    )
    return bool(rows)


def fail_recharge(
    recharge_id: str, reason: str, payment_intent_id: str | None, now_ms: int
) -> Routine[bool]:
    """A decline, an authentication the customer is not there for, or no saved card: the
    recharge stops counting against the cap and the next one waits for the next crossing."""
    recharge = yield from recharge_row(recharge_id)
    if recharge is None or recharge.state is not RechargeState.PENDING:
        return False
    yield (
        Command(
            "UPDATE recharges SET state = 'failed', reason = ?1,"
            " payment_intent_id = COALESCE(?2, payment_intent_id), ended_at_ms = ?3"
            " WHERE recharge_id = ?4"
        ),
        (reason, payment_intent_id, now_ms, recharge_id),
    )
    if (yield from _alerts_configured(recharge.org_id)):
        balance = (yield from load_account(recharge.org_id)).net_balance_units
        failed = recharge_failed_event(
            recharge_id,
            recharge.org_id,
            recharge.amount_units,
            balance,
            payment_intent_id,
            reason,
            now_ms,
        )
        yield insert_event(failed, now_ms)
    return True


def recharge_succeeded(recharge: Recharge, payment_intent_id: str, now_ms: int) -> Routine[None]:
    """Mark a credited recharge succeeded, and tell the org (``complete_recharge``)."""
    yield (
        Command(
            "UPDATE recharges SET state = 'succeeded', payment_intent_id = ?1, ended_at_ms = ?2"
            " WHERE recharge_id = ?3"
        ),
        (payment_intent_id, now_ms, recharge.recharge_id),
    )
    if (yield from _alerts_configured(recharge.org_id)):
        balance = (yield from load_account(recharge.org_id)).net_balance_units
        succeeded = recharge_succeeded_event(recharge, balance, payment_intent_id, now_ms)
        yield insert_event(succeeded, now_ms)


def recharge_row(recharge_id: str) -> Routine[Recharge | None]:
    rows = yield _RECHARGE_SQL, (recharge_id,)
    return _recharge_from_row(rows[0]) if rows else None
