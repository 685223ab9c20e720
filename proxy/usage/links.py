"""Short-lived signed links that open one org's usage page without its access token.

A link carries the org id and an expiry, signed with HMAC-SHA256; it grants
read-only access to the usage page's data and nothing else. Signing is a few
lines of the standard library (``hmac``), so no extra dependency is taken on.

The key is derived from ``SPU_ADMIN_TOKEN`` so every worker accepts every
worker's links; without an admin token each process draws its own, and a link
then works only on the process that made it.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr

LINK_PREFIX = "spulink_"
DEFAULT_LINK_TTL_S = 3600
MAX_LINK_TTL_S = 24 * 3600
_KEY_LABEL = b"spu-gateway usage links v1"
_PROCESS_KEY = secrets.token_bytes(32)


def link_key(admin_token: SecretStr | None) -> bytes:
    """The signing key: a derivation of the admin token (never the token itself)."""
    if admin_token is None or not admin_token.get_secret_value():
        return _PROCESS_KEY
    return hmac.new(admin_token.get_secret_value().encode(), _KEY_LABEL, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class UsageLinks:
    key: bytes
    clock_s: Callable[[], float] = time.time

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())

    def sign(self, org_id: str, ttl_s: int) -> tuple[str, int]:
        """A link token for ``org_id`` and its expiry (epoch seconds)."""
        expires_at_s = int(self.clock_s()) + ttl_s
        payload = f"{_b64(org_id.encode())}.{expires_at_s}"
        return f"{LINK_PREFIX}{payload}.{self._signature(payload)}", expires_at_s

    def verify(self, token: str) -> str | None:
        """The org a valid, unexpired link token names; None for anything else."""
        if not token.startswith(LINK_PREFIX):
            return None
        payload, _, signature = token.removeprefix(LINK_PREFIX).rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._signature(payload).encode()):
            return None
        org_part, _, expiry = payload.partition(".")
        if not expiry.isdigit() or int(expiry) <= self.clock_s():
            return None
        try:
            return _unb64(org_part).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
