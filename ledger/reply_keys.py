"""Whose an idempotency key is: the one rule every backend asks before a keyed hold.

A key belongs to the call that claimed it, and what that call became says
what the key is now: settled, it is completed (its reply answers again);
open and unexpired, it is in flight; ended any other way (released: nothing
was produced; expired unsettled: its worker died), it is free for a retry to
claim. The same key with another request is refused for as long as it is
kept, whatever became of its call, so a key never names two requests.
"""

from dataclasses import dataclass

from ledger.models import HoldState, KeyInUse, KeyUse, ReplyKey, StoredReply


@dataclass(frozen=True, slots=True)
class KeptKey:
    """What a store keeps under a key, with the state of the hold of the call that claimed it."""

    fingerprint: str
    request_id: str
    expires_at_ms: int
    """When the key is forgotten: ``keep_s`` after it was claimed."""
    hold_state: HoldState | None
    """None when its hold is gone or was never placed."""
    hold_expires_at_ms: int
    reply: StoredReply | None


def key_use(kept: KeptKey | None, key: ReplyKey, request_id: str, now_ms: int) -> KeyInUse | None:
    """Why ``request_id`` may not claim ``key`` now; None when it may."""
    if kept is None or kept.expires_at_ms <= now_ms or kept.request_id == request_id:
        return None
    if kept.fingerprint != key.fingerprint:
        return KeyInUse(key.key, KeyUse.OTHER_REQUEST, kept.request_id)
    if kept.hold_state is HoldState.SETTLED:
        return KeyInUse(key.key, KeyUse.COMPLETED, kept.request_id, kept.reply)
    if kept.hold_state is HoldState.OPEN and kept.hold_expires_at_ms > now_ms:
        return KeyInUse(key.key, KeyUse.IN_FLIGHT, kept.request_id)
    return None
