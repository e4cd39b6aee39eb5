"""Encryption at rest for account numbers (Fernet: AES-128-CBC + HMAC-SHA256) and for stored files (AES-256-GCM,
FileCipher below), each with key rotation.

A keyed fingerprint (HMAC-SHA256) lets us find duplicates without decrypting anything. It must not change when
the encryption keys rotate (a new key is prepended to ACCOUNT_NUMBER_KEYS), or the same bank account could be
linked twice: it is keyed by FINGERPRINT_KEY, or when that is unset by the oldest account-number key (the last
one), the key every fingerprint was made with before any rotation. Set FINGERPRINT_KEY to that oldest key before
retiring it. Lookups also try the fingerprints keyed by every account-number key, so the rows fingerprinted before
FINGERPRINT_KEY was set, or after a rotation made when the first key made fingerprints, are still found.
"""

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.config import Settings


def _hmac_key(secret: str) -> bytes:
    return hashlib.sha256(b"fingerprint:" + secret.encode()).digest()


class AccountNumberCipher:
    def __init__(self, keys: list[str], fingerprint_key: str | None = None):
        if not keys:
            raise ValueError("at least one ACCOUNT_NUMBER_KEYS entry is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        secrets = dict.fromkeys([fingerprint_key or keys[-1], *keys])  # the current one first, no repeats
        self._fingerprint_keys = [_hmac_key(secret) for secret in secrets]

    @classmethod
    def from_settings(cls, settings: Settings) -> "AccountNumberCipher":
        return cls(
            [k.get_secret_value() for k in settings.account_number_keys],
            settings.fingerprint_key.get_secret_value() if settings.fingerprint_key else None,
        )

    def encrypt(self, account_number: str) -> str:
        return self._fernet.encrypt(account_number.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("account number cannot be decrypted with the configured keys") from exc

    def fingerprint(self, routing_number: str, account_number: str) -> str:
        """The fingerprint a new row is stored with."""
        return self.fingerprints(routing_number, account_number)[0]

    def fingerprints(self, routing_number: str, account_number: str) -> list[str]:
        """Every fingerprint a row of this bank account may be stored with, the current one first."""
        message = f"{routing_number}:{account_number}".encode()
        return [hmac.new(key, message, "sha256").hexdigest() for key in self._fingerprint_keys]


class FileCipher:
    """Files at rest (NACHA files today): AES-256-GCM, a fresh 96-bit nonce per file, the key id stored beside the
    ciphertext. FILE_ENCRYPTION_KEYS rotates as ACCOUNT_NUMBER_KEYS does: the first key encrypts, every key
    decrypts (the stored key id picks it). The caller binds each ciphertext to its row with `context` (authenticated,
    not stored), so a ciphertext copied onto another row does not decrypt there."""

    NONCE_BYTES = 12

    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one FILE_ENCRYPTION_KEYS entry is required")
        self._keys: dict[str, AESGCM] = {}
        for encoded in keys:
            try:
                raw = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError("each FILE_ENCRYPTION_KEYS entry must be 32 random bytes in base64 (AES-256)")
            self._keys.setdefault(self.key_id(raw), AESGCM(raw))
        self.current_key_id = next(iter(self._keys))

    @staticmethod
    def key_id(raw_key: bytes) -> str:
        """A key's public name: enough of a hash of it to tell keys apart, nothing to recover it from."""
        return hashlib.sha256(b"file-key-id:" + raw_key).hexdigest()[:16]

    @classmethod
    def from_settings(cls, settings: Settings) -> "FileCipher":
        return cls([k.get_secret_value() for k in settings.file_encryption_keys])

    def encrypt(self, plaintext: bytes, context: str) -> tuple[str, bytes]:
        """(key id, nonce + ciphertext and tag) under the current key."""
        nonce = os.urandom(self.NONCE_BYTES)
        return self.current_key_id, nonce + self._keys[self.current_key_id].encrypt(nonce, plaintext, context.encode())

    def decrypt(self, key_id: str, sealed: bytes, context: str) -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            raise ValueError(f"file encrypted with key {key_id!r}, which FILE_ENCRYPTION_KEYS no longer holds")
        try:
            return key.decrypt(sealed[: self.NONCE_BYTES], sealed[self.NONCE_BYTES :], context.encode())
        except InvalidTag as exc:
            raise ValueError(f"file does not decrypt with key {key_id!r} (altered, or not this row's)") from exc
