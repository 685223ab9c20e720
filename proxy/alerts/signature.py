"""Alert signatures, as Stripe signs its webhooks: ``spu-signature: t=<unix time>,v1=<hex
HMAC-SHA256 of "<t>.<body>" with the org's secret>``.

A receiver recomputes the HMAC over the timestamp and the raw body, compares it in
constant time, and refuses a timestamp far from its own clock (a replay).
"""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "spu-signature"
SECRET_PREFIX = "whsec_spu_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
