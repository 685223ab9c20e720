"""Per-org access tokens: issued once, stored as SHA-256, looked up through a short cache.

The cache bounds how long a revoked token keeps working on *other* workers
(``token_cache_ttl_s``); on the worker that revokes it, ``forget`` makes it
immediate. Only the hash ever reaches the store or the cache.
"""

import hashlib
import hmac
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request

from ledger import NO_LIMITS, AccessKey, KeyLimits, LedgerStore, LedgerUnavailable
from proxy.errors import ApiError, ledger_unavailable
from proxy.server import request_log

TOKEN_PREFIX = "spu_"
TOKEN_BYTES = 32
VISIBLE_PREFIX_CHARS = 12
CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the org whose credits pay, and the key it used."""

    org_id: str
    key_id: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    store: LedgerStore,
    org_id: str,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
    limits: KeyLimits = NO_LIMITS,
) -> tuple[str, AccessKey]:
    """Create a token for an org; the clear token is returned here and never again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    key = AccessKey(
        key_id=f"key_{uuid.uuid4().hex[:16]}",
        org_id=org_id,
        prefix=token[:VISIBLE_PREFIX_CHARS],
        token_sha256=hash_token(token),
        name=name,
        created_at=datetime.now(UTC),
        expires_at=expires_at,
        limits=limits,
    )
    await store.add_access_key(key)
    return token, key


def bearer_token(request: Request) -> str | None:
    """The token from ``Authorization: Bearer`` or, as Anthropic clients send it, ``x-api-key``."""
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    return api_key or None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, error_type="invalid_request_error", code="invalid_api_key")


class TokenAuthenticator:
    def __init__(
        self,
        store: LedgerStore,
        *,
        cache_ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._cache_ttl_s = cache_ttl_s
        self._monotonic = monotonic
        self._cache: OrderedDict[str, tuple[AccessKey | None, float]] = OrderedDict()

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise _unauthorized(
                "Missing access token: send 'Authorization: Bearer <token>' or 'x-api-key'."
            )
        digest = hash_token(token)
        key = await self._lookup(digest)
        if key is None or not hmac.compare_digest(key.token_sha256, digest):
            raise _unauthorized("Invalid access token.")
        if key.revoked_at is not None:
            raise _unauthorized(f"Access token {key.prefix}… has been revoked.")
        if key.expires_at is not None and key.expires_at <= datetime.now(UTC):
            raise _unauthorized(f"Access token {key.prefix}… has expired.")
        request_log.note(org_id=key.org_id)
        return Principal(org_id=key.org_id, key_id=key.key_id)

    def forget(self, token_sha256: str) -> None:
        self._cache.pop(token_sha256, None)

    async def _lookup(self, digest: str) -> AccessKey | None:
        now = self._monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            self._cache.move_to_end(digest)
            return cached[0]
        try:
            key = await self._store.access_key_by_hash(digest)
        except LedgerUnavailable as error:
            raise ledger_unavailable() from error
        self._cache[digest] = (key, now + self._cache_ttl_s)
        self._cache.move_to_end(digest)
        while len(self._cache) > CACHE_MAX_ENTRIES:
            self._cache.popitem(last=False)
        return key
