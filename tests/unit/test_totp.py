"""TOTP codes, recovery codes and the enrolment QR code (core/totp.py): pure."""

from datetime import UTC, datetime, timedelta

import pyotp

from core import totp

NOW = datetime(2026, 12, 2, 0, 0, 15, tzinfo=UTC)


def code_at(secret: str, moment: datetime) -> str:
    return pyotp.TOTP(secret).at(moment)


def test_a_code_matches_its_own_step_and_its_neighbours_within_the_window():
    secret = totp.new_secret()
    step = totp.step_of(NOW)
    assert totp.matching_step(secret, code_at(secret, NOW), NOW, window=1) == step
    earlier = code_at(secret, NOW - timedelta(seconds=30))
    assert totp.matching_step(secret, earlier, NOW, window=1) == step - 1  # a clock 30 s behind
    assert totp.matching_step(secret, earlier, NOW, window=0) is None
    stale = code_at(secret, NOW - timedelta(minutes=5))
    assert totp.matching_step(secret, stale, NOW, window=1) is None


def test_codes_of_another_secret_or_not_six_digits_never_match():
    secret, other = (
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU",
    )  # fixed: their codes differ around NOW
    assert totp.matching_step(secret, code_at(other, NOW), NOW, window=1) is None
    for code in ("", "12345", "1234567", "12a456", " 123456"):
        assert totp.matching_step(secret, code, NOW, window=4) is None


def test_recovery_codes_are_distinct_and_read_however_typed():
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    code = codes[0]
    assert len(code) == 19 and code.count("-") == 3
    normal = totp.normalize_recovery_code(code)
    assert totp.normalize_recovery_code(code.lower()) == normal
    assert totp.normalize_recovery_code(code.replace("-", " ")) == normal == code.replace("-", "")


def test_provisioning_uri_and_qr_png():
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "dana@riverside.example", "Back office")
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri and "issuer=Back%20office" in uri
    png = totp.qr_png(uri)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 200
