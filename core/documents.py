"""The pure parts of documents: what type a file is by its content, where its bytes are kept, what binds a
ciphertext to its version, and the signed download links."""

import hashlib
import hmac
import uuid
from datetime import datetime

from core.config import Settings

# Magic bytes of the types we accept. The client's file name and Content-Type are never believed.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def sniff(data: bytes) -> str | None:
    """The content type of `data` by its first bytes, or None when it is none of PDF, PNG and JPEG."""
    return next((content_type for magic, content_type in SIGNATURES if data.startswith(magic)), None)


STAGING = "staging/"  # uploads waiting for their scan (left behind only by a crash: the retention run sweeps them)


def staging_key(upload_id: uuid.UUID) -> str:
    """Where an upload waits, sealed, for its scan: never a document until the scan passes."""
    return f"{STAGING}{upload_id}"


def version_key(document_id: uuid.UUID, version_id: uuid.UUID) -> str:
    return f"documents/{document_id}/{version_id}"


def sealing_context(document_id: uuid.UUID, version_id: uuid.UUID) -> str:
    """The associated data of a version's ciphertext: copied onto another version or document, it does not open."""
    return f"document:{document_id}:version:{version_id}"


def _link_key(settings: Settings) -> bytes:
    # Derived from the JWT secret, apart from it (a link's MAC is never a valid token's, nor the other way).
    return hashlib.sha256(b"document-link:" + settings.jwt_secret.get_secret_value().encode()).digest()


def link_signature(
    settings: Settings, document_id: uuid.UUID, number: int, expires: int, requester_id: uuid.UUID
) -> str:
    message = f"{document_id}:{number}:{expires}:{requester_id}".encode()
    return hmac.new(_link_key(settings), message, "sha256").hexdigest()


class LinkRefused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def check_link(
    settings: Settings,
    document_id: uuid.UUID,
    number: int,
    expires: int,
    requester_id: uuid.UUID,
    signature: str,
    now: datetime,
) -> None:
    """Raises LinkRefused: 403 when the link was not signed by us as it stands (any part changed), 410 once it expired.
    The signature is checked first, so a link whose expiry was pushed back is a forgery, not an expired link."""
    expected = link_signature(settings, document_id, number, expires, requester_id)
    if not hmac.compare_digest(expected, signature):
        raise LinkRefused(403, "invalid_link", "this download link is not valid (altered, or not ours)")
    if now.timestamp() >= expires:
        raise LinkRefused(410, "link_expired", "this download link has expired: ask for a new one")
