"""Account-number encryption and fingerprints across a key rotation (a new key prepended)."""

import pytest
from cryptography.fernet import Fernet

from core.crypto import AccountNumberCipher

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
ROUTING, NUMBER = "021000021", "000123456789"


def test_a_rotation_keeps_the_fingerprints_and_old_numbers_decrypt():
    before, after = AccountNumberCipher([OLD]), AccountNumberCipher([NEW, OLD])
    token = before.encrypt(NUMBER)
    assert after.fingerprint(ROUTING, NUMBER) == before.fingerprint(ROUTING, NUMBER)
    assert after.decrypt(token) == NUMBER
    with pytest.raises(ValueError):  # the new key encrypts
        before.decrypt(after.encrypt(NUMBER))
    assert after.fingerprint(ROUTING, NUMBER) != after.fingerprint(ROUTING, "000123456780")


def test_a_fingerprint_key_of_its_own_outlives_the_encryption_keys_and_still_finds_older_fingerprints():
    legacy = AccountNumberCipher([OLD]).fingerprint(ROUTING, NUMBER)
    pinned = AccountNumberCipher([NEW, OLD], fingerprint_key="a stable secret")
    assert pinned.fingerprint(ROUTING, NUMBER) != legacy
    assert pinned.fingerprints(ROUTING, NUMBER)[0] == pinned.fingerprint(ROUTING, NUMBER)
    assert legacy in pinned.fingerprints(ROUTING, NUMBER)  # rows fingerprinted before the setting existed
    retired = AccountNumberCipher([NEW], fingerprint_key="a stable secret")  # the old key dropped
    assert retired.fingerprint(ROUTING, NUMBER) == pinned.fingerprint(ROUTING, NUMBER)


def test_fingerprints_an_earlier_rotation_made_under_the_first_key_are_still_found():
    """Before this fix the first key made the fingerprints: a rotation done then left rows under the new key."""
    made_after_old_rotation = AccountNumberCipher([NEW]).fingerprint(ROUTING, NUMBER)
    assert made_after_old_rotation in AccountNumberCipher([NEW, OLD]).fingerprints(ROUTING, NUMBER)
