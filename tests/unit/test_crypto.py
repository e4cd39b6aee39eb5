"""Account-number encryption and fingerprints across a key rotation (a new key prepended)."""

import base64
import os

import pytest
from cryptography.fernet import Fernet

from core.crypto import AccountNumberCipher, FileCipher

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


FILE_OLD, FILE_NEW = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))


def test_a_file_key_rotation_encrypts_under_the_new_key_and_still_opens_files_of_the_old_one():
    before, after = FileCipher([FILE_OLD]), FileCipher([FILE_NEW, FILE_OLD])
    old_id, old_sealed = before.encrypt(b"101 NACHA TEXT", "ach_file:1")
    assert after.decrypt(old_id, old_sealed, "ach_file:1") == b"101 NACHA TEXT"
    new_id, new_sealed = after.encrypt(b"101 NACHA TEXT", "ach_file:1")
    assert new_id != old_id and b"NACHA" not in new_sealed
    with pytest.raises(ValueError, match="no longer holds"):
        before.decrypt(new_id, new_sealed, "ach_file:1")


def test_a_sealed_file_opens_only_on_its_own_row_and_unaltered():
    cipher = FileCipher([FILE_OLD])
    key_id, sealed = cipher.encrypt(b"101 NACHA TEXT", "ach_file:1")
    with pytest.raises(ValueError, match="not this row's"):
        cipher.decrypt(key_id, sealed, "ach_file:2")
    with pytest.raises(ValueError):
        cipher.decrypt(key_id, sealed[:-1] + bytes([sealed[-1] ^ 1]), "ach_file:1")
    assert cipher.encrypt(b"x", "c")[1] != cipher.encrypt(b"x", "c")[1]  # a fresh nonce each time


@pytest.mark.parametrize("bad", ["", "not base64!", base64.b64encode(b"16 bytes only!!!").decode()])
def test_a_file_key_must_be_32_bytes_of_base64(bad):
    with pytest.raises(ValueError, match="32 random bytes"):
        FileCipher([bad])
