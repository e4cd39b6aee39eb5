"""Signed links to an export's file: HMAC-SHA256 over the export's id and the link's expiry with the server's
export_link_secret. The link opens the file without signing in until it expires; an altered one is refused."""

import hashlib
import hmac
import uuid
from datetime import datetime
from urllib.parse import urlencode

from core.config import Settings


def _key(settings: Settings) -> bytes:
    if settings.export_link_secret is not None:
        return settings.export_link_secret.get_secret_value().encode()
    # Derived from the JWT secret, apart from it (a link's MAC is never a valid token's, nor the other way), so a
    # production without EXPORT_LINK_SECRET still signs with a secret the production check refuses to leave default.
    return hashlib.sha256(b"export-link:" + settings.jwt_secret.get_secret_value().encode()).digest()


def signature(settings: Settings, export_id: uuid.UUID, expires: int) -> str:
    message = f"transaction-export:{export_id}:{expires}".encode()
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()


def signed_url(settings: Settings, export_id: uuid.UUID, now: datetime) -> str:
    expires = int((now + settings.export_link_ttl).timestamp())
    query = urlencode({"expires": expires, "signature": signature(settings, export_id, expires)})
    return f"{settings.public_base_url.rstrip('/')}/api/v1/transaction-exports/{export_id}/file?{query}"


def valid(settings: Settings, export_id: uuid.UUID, expires: int, given: str, now: datetime) -> bool:
    """Signed by us as it stands (any part changed: not) and not yet expired."""
    expected = signature(settings, export_id, expires)
    return hmac.compare_digest(expected, given) and now.timestamp() < expires
