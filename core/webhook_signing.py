"""Signatures of the webhooks we send: the scheme the bank uses with us (api/routers/webhooks.py), mirrored.

Each delivery carries `X-Webhook-Timestamp: <unix seconds>` and `X-Webhook-Signature: v1=<hex HMAC-SHA256(secret,
"<timestamp>." + raw body)>`, plus `X-Webhook-Id` (the event's id: the receiver dedupes on it, since delivery is
at least once) and `X-Webhook-Event` (its type). A receiver recomputes the signature over the raw bytes it got and
refuses a timestamp too far from its clock (a replay)."""

import hashlib
import hmac
import re
import secrets

SECRET_PREFIX = "whsec_"
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)


def new_secret() -> str:
    """A subscription's signing secret: 256 random bits, shown once to its creator."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def headers(secret: str, event_id: str, event_type: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Webhook-Id": event_id,
        "X-Webhook-Event": event_type,
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": sign(secret, timestamp, body),
    }


def verify(secret: str, timestamp: str, signature: str, body: bytes, now: float, tolerance_seconds: float) -> bool:
    """What a receiver does: a well-formed timestamp within the tolerance, and the signature over exactly `body`."""
    if not _TIMESTAMP.fullmatch(timestamp) or abs(now - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode("utf-8", "surrogateescape"))
