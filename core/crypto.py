"""Encryption at rest for account numbers (Fernet: AES-128-CBC + HMAC-SHA256), with key rotation.

A keyed fingerprint (HMAC-SHA256) lets us find duplicates without decrypting anything. It must not change when
the encryption keys rotate (a new key is prepended to ACCOUNT_NUMBER_KEYS), or the same bank account could be
linked twice: it is keyed by FINGERPRINT_KEY, or when that is unset by the oldest account-number key (the last
one), the key every fingerprint was made with before any rotation. Set FINGERPRINT_KEY to that oldest key before
retiring it. Lookups also try the fingerprints keyed by every account-number key, so the rows fingerprinted before
FINGERPRINT_KEY was set, or after a rotation made when the first key made fingerprints, are still found.
"""

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

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
        return cls([k.get_secret_value() for k in settings.account_number_keys],
                   settings.fingerprint_key.get_secret_value() if settings.fingerprint_key else None)

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
