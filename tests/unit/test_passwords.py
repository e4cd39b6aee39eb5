"""Password rules (core/passwords.py) and the lockout's escalation (domain/lockout.py lock_duration): pure."""

from datetime import timedelta

import pytest

from core.config import Settings
from core.email import render
from core.passwords import reused, weakness
from core.security import hash_password
from domain.lockout import lock_duration

RULES = dict(min_length=12, min_score=3)


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "vivid-otter-harbor-42", "a-long-test-password", "Tr0ub4dor&3xyz-plus"],
)
def test_long_unpredictable_passwords_pass(password):
    assert weakness(password, **RULES) is None


def test_short_password_refused_whatever_its_strength():
    problem = weakness("X9#kq!Lm2", **RULES)
    assert problem is not None and problem.code == "password_too_short" and problem.details == {"min_length": 12}


@pytest.mark.parametrize("password", ["password1234", "qwertyuiop123", "123456789012", "aaaaaaaaaaaaaaaa"])
def test_common_and_patterned_passwords_refused(password):
    problem = weakness(password, **RULES)
    assert problem is not None and problem.code == "password_too_weak"
    assert problem.details["score"] < 3 and problem.message


def test_the_users_own_email_and_name_count_against_a_password():
    password = "dana.teller@riverside.example"
    assert weakness(password, **RULES) is None  # strong enough for a stranger...
    problem = weakness(password, **RULES, user_inputs=["dana.teller@riverside.example", "Dana Teller"])
    assert problem is not None and problem.code == "password_too_weak"  # ...not as this user's


@pytest.mark.parametrize("length", [72, 73, 128])
def test_a_password_longer_than_zxcvbn_takes_is_judged_by_its_beginning(length):
    """zxcvbn raises on more than 72 characters; the API takes up to 128 (a 500 that fuzzing found on sign-ups)."""
    strong = ("vivid-otter-harbor-42 " * 6)[:length]
    assert weakness(strong, **RULES) is None
    weak = ("password" * 16)[:length]
    problem = weakness(weak, **RULES)
    assert problem is not None and problem.code == "password_too_weak"


def test_reuse_of_a_recent_password_refused():
    recent = [hash_password("first-long-passphrase-1"), hash_password("second-long-passphrase-2")]
    problem = reused("second-long-passphrase-2", recent)
    assert problem is not None and problem.code == "password_reused" and problem.details == {"history": 2}
    assert reused("a-third-long-passphrase-3", recent) is None


def test_each_lock_lasts_twice_the_last_up_to_the_maximum():
    settings = Settings(lockout_duration=timedelta(minutes=15), lockout_max_duration=timedelta(hours=2))
    assert [lock_duration(settings, n) for n in range(5)] == [
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=2),
    ]
    assert lock_duration(settings, 10_000) == timedelta(hours=2)  # no overflow however many


def test_the_reset_email_carries_the_link_and_the_token():
    context = dict(
        name="Dana <Teller>", token="eyJ.abc.def", link="https://bank.example/reset?token=eyJ.abc.def", minutes=30
    )
    subject, text, html = render("password_reset", context)
    assert subject == "Reset your back-office password"
    assert "https://bank.example/reset?token=eyJ.abc.def" in text and "eyJ.abc.def" in text and "30 minutes" in text
    assert 'href="https://bank.example/reset?token=eyJ.abc.def"' in html and "Dana &lt;Teller&gt;" in html
