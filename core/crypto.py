"""Encryption at rest for account numbers (Fernet: AES-128-CBC + HMAC-SHA256), with key rotation.

A keyed fingerprint (HMAC-SHA256) lets us find duplicates without decrypting anything.
"""

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.config import Settings


class AccountNumberCipher:
    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one ACCOUNT_NUMBER_KEYS entry is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._fingerprint_key = hashlib.sha256(b"fingerprint:" + keys[0].encode()).digest()

    @classmethod
    def from_settings(cls, settings: Settings) -> "AccountNumberCipher":
        return cls([k.get_secret_value() for k in settings.account_number_keys])

    def encrypt(self, account_number: str) -> str:
        return self._fernet.encrypt(account_number.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("account number cannot be decrypted with the configured keys") from exc

    def fingerprint(self, routing_number: str, account_number: str) -> str:
        return hmac.new(self._fingerprint_key, f"{routing_number}:{account_number}".encode(), "sha256").hexdigest()
