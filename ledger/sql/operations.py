"""Every ledger write, once, as a routine both SQL backends run (see ``ledger.sql.routine``).

Each routine is one atomic operation inside the transaction its backend opens:
SQLite's ``BEGIN IMMEDIATE`` (the whole file is locked), PostgreSQL's READ
COMMITTED transaction in which the accounts a batch touches were locked first
(``ledger.postgres``). Either way nothing else changes the org's money between a
routine's reads and its writes. Nothing is cached between operations: another
process may have written since.

``hold`` and ``settle`` are the hot path and are kept to one read and two or
three writes each; everything else favours plain code over statement counts.
"""

from collections.abc import Sequence

from ledger.clock import from_ms, optional_to_ms, to_ms
from ledger.errors import AccountNotFound, HoldNotFound, HoldNotOpen, IdempotencyConflict
from ledger.key_limits import RATE_WINDOW_MS
from ledger.models import (
    AccessKey,
    Account,
    CreditKind,
    CreditResult,
    CreditTransaction,
    HoldOutcome,
    HoldPlaced,
    HoldRefused,
    HoldState,
    ReplyKey,
    SettleResult,
    StoredReply,
    Subscription,
    UsageDetails,
    UsageRecord,
)
from ledger.outbox import RechargeState, recharge_credit_id, recharge_credit_reason
from ledger.periods import (
    AllowanceChange,
    audit_lines,
    is_stale,
    lapse_allowance,
    plan_period,
    renewed_period,
)
from ledger.replays import check_key_replay, check_settlement_replay, credit_replay, hold_replay
from ledger.reply_keys import KeptKey, key_use
from ledger.sql import outbox
from ledger.sql.dialect import SQLITE_JSON_EACH
from ledger.sql.funds import FUNDS_AND_HOLD_SQL, HOLD_AND_FUNDS_SQL, Funds, read_funds
from ledger.sql.keys import KeyState, key_refusal, settled_spend
from ledger.sql.reads import load_account
from ledger.sql.routine import Command, Params, Query, Routine, Statement, Writes
from ledger.sql.rows import (
    CREDIT_COLUMNS,
    KEY_COLUMNS,
    USAGE_COLUMNS,
    credit_from_row,
    key_from_row,
    usage_from_row,
    usage_row,
)
from ledger.waterfall import debt_payoff, settlement_split

_INSERT_HOLD_SQL = Command(
    "INSERT INTO holds (request_id, org_id, key_id, amount_units, state, created_at_ms,"
    " expires_at_ms, tokens) VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7)"
)
_ADD_HELD_SQL = Command(
    "UPDATE accounts SET open_hold_units = open_hold_units + ?1 WHERE org_id = ?2"
)
_DEBIT_SQL = Command(
    "UPDATE accounts SET subscription_used_units = subscription_used_units + ?1,"
    " purchased_used_units = purchased_used_units + ?2,"
    " granted_used_units = granted_used_units + ?3, debt_units = debt_units + ?4,"
    " open_hold_units = open_hold_units - ?5, updated_at_ms = ?6 WHERE org_id = ?7"
)
_SETTLE_HOLD_SQL = Command(
    "UPDATE holds SET state = 'settled', ended_at_ms = ?1, tokens = ?3 WHERE request_id = ?2"
)
"""Trues the tokens a rate-limited key's hold counted up to what the call used."""
_INSERT_USAGE_SQL = Command(
    f"INSERT INTO usage_records ({USAGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
    " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
)
_USAGE_SQL = Query(f"SELECT {USAGE_COLUMNS} FROM usage_records WHERE request_id = ?1")
_RELEASE_SQL = Query(
    "UPDATE holds SET state = 'released', ended_at_ms = ?1,"
    " tokens = CASE WHEN tokens IS NULL THEN NULL ELSE 0 END"
    " WHERE request_id = ?2 AND state = 'open' RETURNING org_id, amount_units"
)
"""A released call produced nothing: it still counts for rpm, no longer for tpm."""
_HOLD_EXISTS_SQL = Query("SELECT 1 FROM holds WHERE request_id = ?1")
_RENEW_SQL = Command(
    "UPDATE holds SET expires_at_ms = ?2 WHERE request_id IN"
    f" (SELECT value FROM {SQLITE_JSON_EACH}?1)) AND state = 'open' AND expires_at_ms > ?3"
)
_KEPT_KEY_SQL = Query(
    "SELECT r.fingerprint, r.request_id, r.expires_at_ms, r.content_type, r.body, h.state,"
    " h.expires_at_ms FROM idempotent_replies r LEFT JOIN holds h ON h.request_id = r.request_id"
    " WHERE r.org_id = ?1 AND r.idempotency_key = ?2"
)
_CLAIM_KEY_SQL = Command(
    "INSERT INTO idempotent_replies (org_id, idempotency_key, fingerprint, request_id,"
    " expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (org_id, idempotency_key) DO UPDATE"
    " SET fingerprint = excluded.fingerprint, request_id = excluded.request_id,"
    " expires_at_ms = excluded.expires_at_ms, content_type = NULL, body = NULL"
)
_KEEP_REPLY_SQL = Command(
    "UPDATE idempotent_replies SET content_type = ?1, body = ?2 WHERE request_id = ?3"
)
_FORGET_REPLIES_SQL = Query(
    "DELETE FROM idempotent_replies WHERE request_id IN (SELECT request_id FROM"
    " idempotent_replies WHERE expires_at_ms <= ?1 LIMIT ?2) RETURNING request_id"
)
_EXPIRE_ORG_SQL = Query(
    "UPDATE holds SET state = 'expired', ended_at_ms = ?1 WHERE request_id IN"
    " (SELECT request_id FROM holds WHERE org_id = ?2 AND state = 'open'"
    " AND expires_at_ms <= ?1 LIMIT ?3) RETURNING amount_units"
)
_CREDIT_SQL = Query(f"SELECT {CREDIT_COLUMNS} FROM credit_transactions WHERE transaction_id = ?1")
_INSERT_CREDIT_SQL = Command(
    f"INSERT INTO credit_transactions ({CREDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
)
_WRITE_ALLOWANCE_SQL = Command(
    "UPDATE accounts SET subscription_allowance_units = ?1, subscription_used_units = ?2,"
    " debt_units = ?3, updated_at_ms = ?4 WHERE org_id = ?5"
)
_KEY_CLASH_SQL = Query(
    f"SELECT {KEY_COLUMNS} FROM access_keys WHERE key_id = ?1 OR token_sha256 = ?2"
)
_KEY_SQL = Query(f"SELECT {KEY_COLUMNS} FROM access_keys WHERE org_id = ?1 AND key_id = ?2")


def current_funds(org_id: str, now_ms: int) -> Routine[Funds]:
    """The account's funds, after renewing a locally renewed plan whose period has ended."""
    funds = yield from read_funds(org_id, now_ms)
    if funds.renewal_due(now_ms):
        yield from _renew_period((yield from load_account(org_id)), now_ms)
        funds = yield from read_funds(org_id, now_ms)
    return funds


def _insert_credit(line: CreditTransaction, now_ms: int) -> Statement:
    return (
        _INSERT_CREDIT_SQL,
        (
            line.transaction_id,
            line.org_id,
            line.kind.value,
            line.amount_units,
            line.debt_paid_units,
            line.reason,
            now_ms,
        ),
    )


def _record_allowance_change(
    org_id: str, change: AllowanceChange, reason: str, now_ms: int
) -> Routine[None]:
    for line in audit_lines(org_id, change):
        transaction = CreditTransaction(
            line.transaction_id,
            org_id,
            line.kind,
            line.amount_units,
            line.debt_paid_units,
            reason,
            from_ms(now_ms),
        )
        yield _insert_credit(transaction, now_ms)


def _write_allowance(org_id: str, change: AllowanceChange, now_ms: int) -> Statement:
    return (
        _WRITE_ALLOWANCE_SQL,
        (change.allowance_units, change.used_units, change.debt_units, now_ms, org_id),
    )


def _renew_period(account: Account, now_ms: int) -> Routine[None]:
    """Renew a locally renewed plan whose period has ended; once, however many notice,
    because the period end moves forward in the same transaction."""
    assert account.period_start is not None and account.period_end is not None
    period = renewed_period(
        to_ms(account.period_start),
        to_ms(account.period_end),
        now_ms,
        allowance_units=account.subscription_allowance_units,
        used_units=account.subscription_used_units,
        debt_units=account.debt_units,
    )
    yield _write_allowance(account.org_id, period.change, now_ms)
    yield (
        Command("UPDATE accounts SET period_start_ms = ?1, period_end_ms = ?2 WHERE org_id = ?3"),
        (period.start_ms, period.end_ms, account.org_id),
    )
    yield from _record_allowance_change(account.org_id, period.change, "period renewed", now_ms)
    yield from outbox.rearm(
        account.org_id, (yield from load_account(account.org_id)).net_balance_units
    )


def create_account(
    org_id: str,
    free_grant_units: int,
    user_id: str | None,
    user_name: str | None,
    user_email: str | None,
    now_ms: int,
) -> Routine[Account]:
    inserted = yield (
        Query(
            "INSERT INTO accounts (org_id, user_id, user_name, user_email, granted_credits_units,"
            " created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)"
            " ON CONFLICT DO NOTHING RETURNING org_id"
        ),
        (org_id, user_id, user_name, user_email, free_grant_units, now_ms),
    )
    if inserted and free_grant_units:
        grant = CreditTransaction(
            f"free_tier:{org_id}",
            org_id,
            CreditKind.FREE_TIER,
            free_grant_units,
            0,
            "free tier",
            from_ms(now_ms),
        )
        yield _insert_credit(grant, now_ms)
    return (yield from load_account(org_id))


def set_stripe_customer(org_id: str, customer_id: str, now_ms: int) -> Routine[str]:
    account = yield from load_account(org_id)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    owner = yield (
        Query("SELECT org_id FROM accounts WHERE stripe_customer_id = ?1"),
        (customer_id,),
    )
    if owner:
        raise IdempotencyConflict("stripe customer", customer_id, "it belongs to another org")
    yield (
        Command(
            "UPDATE accounts SET stripe_customer_id = ?1, updated_at_ms = ?2 WHERE org_id = ?3"
        ),
        (customer_id, now_ms, org_id),
    )
    return customer_id


def hold(
    org_id: str,
    amount_units: int,
    request_id: str,
    ttl_s: float,
    key_id: str | None,
    tokens: int,
    reply_key: ReplyKey | None,
    now_ms: int,
) -> Routine[HoldOutcome]:
    rows = yield FUNDS_AND_HOLD_SQL, (org_id, now_ms, request_id, key_id, now_ms - RATE_WINDOW_MS)
    if not rows:
        raise AccountNotFound(org_id)
    row = rows[0]
    held_org_id, held_amount, held_expires_ms = row[7:10]
    if held_org_id is not None:
        return hold_replay(
            request_id,
            org_id,
            amount_units,
            held_org_id=held_org_id,
            held_amount_units=held_amount,
            expires_at_ms=held_expires_ms,
        )
    if reply_key is not None:
        taken = key_use((yield from _kept_key(org_id, reply_key)), reply_key, request_id, now_ms)
        if taken is not None:
            return taken
    funds = Funds(*row[:7])
    if funds.renewal_due(now_ms):
        funds = yield from current_funds(org_id, now_ms)
    available = funds.available_units
    if amount_units > available:
        return HoldRefused(request_id, org_id, max(available, 0), amount_units)
    rated_tokens = None
    if key_id is not None and row[10] is not None:
        key = KeyState(*row[10:])
        if key.limited:
            refusal = yield from key_refusal(
                key, key_id, request_id, org_id, amount_units, tokens, now_ms
            )
            if refusal is not None:
                return refusal
            rated_tokens = tokens if key.rpm is not None or key.tpm is not None else None
    expires_ms = now_ms + int(ttl_s * 1000)
    hold_row = (request_id, org_id, key_id, amount_units, now_ms, expires_ms, rated_tokens)
    writes: list[tuple[Command, Params]] = [
        (_INSERT_HOLD_SQL, hold_row),
        (_ADD_HELD_SQL, (amount_units, org_id)),
    ]
    if reply_key is not None:
        kept_until_ms = now_ms + int(reply_key.keep_s * 1000)
        claim = (org_id, reply_key.key, reply_key.fingerprint, request_id, kept_until_ms)
        writes.append((_CLAIM_KEY_SQL, claim))
    yield Writes(writes)
    return HoldPlaced(request_id, org_id, amount_units, from_ms(expires_ms))


def _kept_key(org_id: str, reply_key: ReplyKey) -> Routine[KeptKey | None]:
    rows = yield _KEPT_KEY_SQL, (org_id, reply_key.key)
    if not rows:
        return None
    fingerprint, request_id, expires_ms, content_type, body, state, hold_expires_ms = rows[0]
    return KeptKey(
        fingerprint=fingerprint,
        request_id=request_id,
        expires_at_ms=expires_ms,
        hold_state=None if state is None else HoldState(state),
        hold_expires_at_ms=hold_expires_ms or 0,
        reply=None if content_type is None else StoredReply(content_type, body),
    )


def renew_holds(request_ids_json: str, expires_ms: int, now_ms: int) -> Routine[None]:
    yield _RENEW_SQL, (request_ids_json, expires_ms, now_ms)


def forget_replies(limit: int, now_ms: int) -> Routine[int]:
    return len((yield _FORGET_REPLIES_SQL, (now_ms, limit)))


def settle(
    request_id: str,
    actual_units: int,
    details: UsageDetails,
    reply: StoredReply | None,
    now_ms: int,
) -> Routine[SettleResult]:
    rows = yield HOLD_AND_FUNDS_SQL, (request_id, now_ms)
    if not rows:
        raise HoldNotFound(request_id)
    org_id, hold_units, state, expires_ms = rows[0][:4]
    if state == HoldState.SETTLED:
        return (yield from _replay_settlement(request_id, org_id, actual_units, now_ms))
    if state == HoldState.RELEASED:
        raise HoldNotOpen(request_id, state)
    funds = Funds(*rows[0][4:11])
    key_id, rated_tokens, key_created_ms, budget_units, budget_period, watch_floor = rows[0][11:]
    if funds.renewal_due(now_ms):
        funds = yield from current_funds(org_id, now_ms)
    # A hold whose expiry has passed, swept or not, no longer counts in
    # ``funds.held_units`` and reserves nothing for this settlement; the call
    # still produced what it used, so it is paid from what no hold reserves.
    reserved_units = hold_units if state == HoldState.OPEN and expires_ms > now_ms else 0
    split = settlement_split(actual_units, reserved_units, funds.held_units, funds)
    record = UsageRecord(request_id, org_id, actual_units, split, details, from_ms(now_ms))
    debit = (
        split.subscription_units,
        split.purchased_units,
        split.granted_units,
        split.debt_units,
        # Still in the running total while open; the sweep took a swept hold out.
        hold_units if state == HoldState.OPEN else 0,
        now_ms,
        org_id,
    )
    settled_tokens = None if rated_tokens is None else details.total_tokens
    writes: list[tuple[Command, Params]] = [
        (_DEBIT_SQL, debit),
        (_SETTLE_HOLD_SQL, (now_ms, request_id, settled_tokens)),
        (_INSERT_USAGE_SQL, usage_row(record, now_ms)),
    ]
    if budget_units is not None:
        writes.append(settled_spend(key_id, key_created_ms, budget_period, actual_units, now_ms))
    if reply is not None:
        writes.append((_KEEP_REPLY_SQL, (reply.content_type, reply.body, request_id)))
    yield Writes(writes)
    balance_after = funds.net_balance_units - actual_units
    if watch_floor is not None and balance_after < watch_floor:
        yield from outbox.crossings(org_id, request_id, balance_after, now_ms)
    # Every charged unit left the buckets or became debt; the hold no longer counts.
    available = funds.available_units - actual_units + reserved_units
    return SettleResult(record, max(available, 0))


def _replay_settlement(
    request_id: str, org_id: str, actual_units: int, now_ms: int
) -> Routine[SettleResult]:
    record = usage_from_row((yield _USAGE_SQL, (request_id,))[0])
    check_settlement_replay(request_id, record.charged_units, actual_units)
    funds = yield from read_funds(org_id, now_ms)
    return SettleResult(record, max(funds.available_units, 0), replayed=True)


def release(request_id: str, now_ms: int) -> Routine[bool]:
    ended = yield _RELEASE_SQL, (now_ms, request_id)
    if ended:
        ((org_id, amount_units),) = ended
        yield (_ADD_HELD_SQL, (-amount_units, org_id))
        return True
    if not (yield (_HOLD_EXISTS_SQL, (request_id,))):
        raise HoldNotFound(request_id)
    return False


def expire_holds(org_ids: Sequence[str], limit: int, now_ms: int) -> Routine[int]:
    """End the open holds past their expiry of ``org_ids`` (``reads.due_orgs``), at most
    ``limit`` of them; an org with none left due ends none."""
    expired = 0
    for org_id in org_ids:
        if expired >= limit:
            break
        ended = yield _EXPIRE_ORG_SQL, (now_ms, org_id, limit - expired)
        if ended:
            yield (_ADD_HELD_SQL, (-sum(amount for (amount,) in ended), org_id))
        expired += len(ended)
    return expired


def _existing_credit(
    transaction_id: str, org_id: str, kind: CreditKind, amount_units: int
) -> Routine[CreditResult | None]:
    rows = yield _CREDIT_SQL, (transaction_id,)
    return credit_replay(credit_from_row(rows[0]), org_id, kind, amount_units) if rows else None


def credit(
    transaction_id: str,
    org_id: str,
    kind: CreditKind,
    amount_units: int,
    reason: str,
    now_ms: int,
) -> Routine[CreditResult]:
    """Add purchased or granted credit once per id; recorded debt is paid first."""
    already = yield from _existing_credit(transaction_id, org_id, kind, amount_units)
    if already is not None:
        return already
    account = yield from load_account(org_id)
    bucket = "purchased" if kind is CreditKind.PURCHASE else "granted"
    paid = debt_payoff(amount_units, account.debt_units)
    yield (
        Command(
            f"UPDATE accounts SET {bucket}_credits_units = {bucket}_credits_units + ?1,"
            f" {bucket}_used_units = {bucket}_used_units + ?2, debt_units = debt_units - ?2,"
            " updated_at_ms = ?3 WHERE org_id = ?4"
        ),
        (amount_units, paid, now_ms, org_id),
    )
    line = CreditTransaction(
        transaction_id, org_id, kind, amount_units, paid, reason, from_ms(now_ms)
    )
    yield _insert_credit(line, now_ms)
    yield from outbox.rearm(org_id, account.net_balance_units + amount_units)
    return CreditResult(line, applied=True)


def complete_recharge(
    recharge_id: str, payment_intent_id: str, now_ms: int
) -> Routine[CreditResult | None]:
    """``payment_intent.succeeded``: credit the recharge once (a purchase); None for an unknown
    recharge or one that had failed (its PaymentIntent was cancelled: it cannot succeed)."""
    recharge = yield from outbox.recharge_row(recharge_id)
    if recharge is None or recharge.state is RechargeState.FAILED:
        return None
    result = yield from credit(
        recharge_credit_id(recharge),
        recharge.org_id,
        CreditKind.PURCHASE,
        recharge.amount_units,
        recharge_credit_reason(payment_intent_id),
        now_ms,
    )
    if result.applied:
        yield from outbox.recharge_succeeded(recharge, payment_intent_id, now_ms)
    return result


def refund_purchase(
    refund_id: str, org_id: str, amount_units: int, reason: str, now_ms: int
) -> Routine[CreditResult]:
    already = yield from _existing_credit(refund_id, org_id, CreditKind.REFUND, -amount_units)
    if already is not None:
        return already
    account = yield from load_account(org_id)
    taken_back = min(amount_units, account.purchased_left_units)
    yield (
        Command(
            "UPDATE accounts SET purchased_credits_units = purchased_credits_units - ?1,"
            " debt_units = debt_units + ?2, updated_at_ms = ?3 WHERE org_id = ?4"
        ),
        (taken_back, amount_units - taken_back, now_ms, org_id),
    )
    line = CreditTransaction(
        refund_id, org_id, CreditKind.REFUND, -amount_units, 0, reason, from_ms(now_ms)
    )
    yield _insert_credit(line, now_ms)
    return CreditResult(line, applied=True)


def set_subscription(org_id: str, plan: Subscription, now_ms: int) -> Routine[Account]:
    account = yield from load_account(org_id)
    as_of_ms = to_ms(plan.as_of)
    if is_stale(optional_to_ms(account.subscription_as_of), as_of_ms):
        return account
    period = plan_period(
        plan,
        stored_start_ms=optional_to_ms(account.period_start),
        stored_end_ms=optional_to_ms(account.period_end),
        allowance_units=account.subscription_allowance_units,
        used_units=account.subscription_used_units,
        debt_units=account.debt_units,
    )
    yield _write_allowance(org_id, period.change, now_ms)
    yield (
        Command(
            "UPDATE accounts SET subscription_type = ?1, subscription_status = ?2,"
            " subscription_price_id = ?3, subscription_item_id = ?4, period_start_ms = ?5,"
            " period_end_ms = ?6, subscription_as_of_ms = ?7, renews_locally = ?8 WHERE org_id = ?9"
        ),
        (
            plan.tier,
            plan.status,
            plan.price_id,
            plan.item_id,
            period.start_ms,
            period.end_ms,
            as_of_ms,
            plan.renews_locally,
            org_id,
        ),
    )
    reason = f"{plan.tier} period starting {plan.period_start.isoformat()}"
    yield from _record_allowance_change(org_id, period.change, reason, now_ms)
    account = yield from load_account(org_id)
    yield from outbox.rearm(org_id, account.net_balance_units)
    return account


def clear_subscription(org_id: str, as_of_ms: int, now_ms: int) -> Routine[Account]:
    account = yield from load_account(org_id)
    if is_stale(optional_to_ms(account.subscription_as_of), as_of_ms):
        return account
    change = lapse_allowance(
        account.subscription_allowance_units, account.subscription_used_units, account.debt_units
    )
    yield _write_allowance(org_id, change, now_ms)
    yield (
        Command(
            "UPDATE accounts SET subscription_type = 'free', subscription_status = 'canceled',"
            " subscription_price_id = NULL, subscription_item_id = NULL, period_start_ms = NULL,"
            " period_end_ms = NULL, subscription_as_of_ms = ?1, renews_locally = FALSE"
            " WHERE org_id = ?2"
        ),
        (as_of_ms, org_id),
    )
    yield from _record_allowance_change(org_id, change, "subscription ended", now_ms)
    return (yield from load_account(org_id))


def add_access_key(key: AccessKey) -> Routine[None]:
    """Store a key once; adding the same key again is a no-op, a different one a conflict."""
    yield from load_account(key.org_id)
    rows = yield _KEY_CLASH_SQL, (key.key_id, key.token_sha256)
    if rows:
        check_key_replay(key_from_row(rows[0]), key)
        return
    created_ms = to_ms(key.created_at)
    limits = key.limits
    budgeted = limits.budget_units is not None
    yield (
        Command(
            f"INSERT INTO access_keys ({KEY_COLUMNS}, limits_set_at_ms, window_start_ms)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9, ?10, ?11, ?6, ?12)"
        ),
        (
            key.key_id,
            key.org_id,
            key.prefix,
            key.token_sha256,
            key.name,
            created_ms,
            optional_to_ms(key.expires_at),
            limits.budget_units,
            limits.budget_period.value,
            limits.rpm,
            limits.tpm,
            created_ms if budgeted else None,
        ),
    )


def revoke_access_key(org_id: str, key_id: str, now_ms: int) -> Routine[AccessKey | None]:
    yield (
        Command(
            "UPDATE access_keys SET revoked_at_ms = ?1 WHERE org_id = ?2 AND key_id = ?3"
            " AND revoked_at_ms IS NULL"
        ),
        (now_ms, org_id, key_id),
    )
    rows = yield _KEY_SQL, (org_id, key_id)
    return key_from_row(rows[0]) if rows else None


def mark_event(event_id: str, kind: str, now_ms: int) -> Routine[bool]:
    inserted = yield (
        Query(
            "INSERT INTO processed_events (event_id, kind, processed_at_ms) VALUES (?1, ?2, ?3)"
            " ON CONFLICT DO NOTHING RETURNING event_id"
        ),
        (event_id, kind, now_ms),
    )
    return bool(inserted)
