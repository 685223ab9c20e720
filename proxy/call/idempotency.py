"""``Idempotency-Key`` on metered calls: a retry is answered with the first call's reply, never
charged twice.

Every protocol's metered route gets this from the relay, not from its own
code. The key is the client's, per org; what identifies the request is a
digest of its method, path and JSON body (keys sorted, so an SDK's retry and a
re-serialised copy of the same body match). The ledger does the rest
(``LedgerStore.hold`` with a ``ReplyKey``): the key is claimed in the hold's
own write, and the reply is kept in the settlement's own transaction.

Why the settlement's transaction: if the reply were stored after the settle
committed, a crash between the two would leave a call charged with no reply
to show, and its retry would be called and charged again; stored before, a
crash would leave a reply nobody paid for. In one transaction neither can
happen. The only remaining window is a crash after the provider answered and
before the settlement: the call was never charged, its hold expires with its
worker, and the retry runs it again and is charged once.

What a retry with the key gets:

- its call settled: the kept reply, byte for byte, at no charge, the upstream
  not called (``idempotent-replayed: true``); a reply larger than
  ``SPU_IDEMPOTENCY_MAX_REPLY_BYTES`` is not kept, and the retry gets 409
  ``idempotency_reply_not_kept`` instead of a second charge;
- its call still running (on any worker): 409 ``idempotency_key_in_flight``;
- the key used with another request: 422 ``idempotency_key_reused``;
- its call ended without a charge (the upstream refused, or its worker died):
  a new call.

A key is kept for ``SPU_IDEMPOTENCY_KEEP_S`` from its first use (24 h).
"""

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from ledger import KeyInUse, KeyUse, ReplyKey, StoredReply
from proxy.errors import ApiError

IDEMPOTENCY_HEADER = "idempotency-key"
PARAM = "Idempotency-Key"
MAX_KEY_CHARS = 255


@dataclass(frozen=True, slots=True)
class Idempotency:
    keep_s: float
    """How long a key and its reply are kept from its first use."""
    max_reply_bytes: int
    """The largest reply kept; a larger one is charged once and not kept."""

    def key_of(self, request: Request, body: dict[str, Any]) -> ReplyKey | None:
        """The request's ``Idempotency-Key`` and the digest of what it asks (``body``, as its
        route parsed it: the body is parsed once); None without one."""
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return None
        if not 0 < len(key) <= MAX_KEY_CHARS or not key.isascii() or not key.isprintable():
            raise ApiError(
                400,
                f"'{PARAM}' must be 1 to {MAX_KEY_CHARS} printable ASCII characters.",
                param=PARAM,
                code="invalid_idempotency_key",
            )
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + canonical)
        return ReplyKey(key, digest.hexdigest(), self.keep_s)

    def kept(self, content_type: str, body: bytes) -> StoredReply:
        """The reply as the ledger keeps it: whole, or (too large) only as having been sent."""
        return StoredReply(content_type, body if len(body) <= self.max_reply_bytes else None)

    def capture(self) -> "ReplyCapture":
        return ReplyCapture(self.max_reply_bytes)


class ReplyCapture:
    """A stream's bytes as they go out, kept up to a bound (beyond it, none are kept)."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._parts: list[bytes] | None = []
        self._size = 0

    def add(self, data: bytes) -> None:
        if self._parts is None:
            return
        self._size += len(data)
        if self._size > self._max_bytes:
            self._parts = None
        else:
            self._parts.append(data)

    def reply(self, content_type: str) -> StoredReply:
        return StoredReply(content_type, None if self._parts is None else b"".join(self._parts))


def answer_for_taken_key(taken: KeyInUse) -> Response:
    """What a request whose key is taken gets: the kept reply, or why not (raised)."""
    if taken.use is KeyUse.COMPLETED and taken.reply is not None and taken.reply.body is not None:
        return Response(
            taken.reply.body,
            media_type=taken.reply.content_type,
            headers={
                "x-request-id": taken.request_id,
                "idempotent-replayed": "true",
                "x-spu-charged": "0",
            },
        )
    if taken.use is KeyUse.COMPLETED:
        raise ApiError(
            409,
            f"The call with this {PARAM} ({taken.request_id}) completed and was charged, but its"
            " reply was larger than this gateway keeps (SPU_IDEMPOTENCY_MAX_REPLY_BYTES); send"
            " a new key to call again.",
            param=PARAM,
            code="idempotency_reply_not_kept",
            headers={"x-should-retry": "false"},
        )
    if taken.use is KeyUse.IN_FLIGHT:
        raise ApiError(
            409,
            f"A call with this {PARAM} ({taken.request_id}) is still running; retry once it"
            " has finished to get its reply.",
            param=PARAM,
            code="idempotency_key_in_flight",
        )
    raise ApiError(
        422,
        f"This {PARAM} was already used with a different request ({taken.request_id});"
        " a key names one request.",
        param=PARAM,
        code="idempotency_key_reused",
    )
