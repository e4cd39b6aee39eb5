"""The rate limiter's pure parts: endpoint groups, limits and tiers, the answer's headers, and whom a request counts
against (the bucket statement itself is tested on the real database: tests/integration/test_rate_limits.py)."""

from datetime import timedelta

import pytest
from starlette.datastructures import Headers

from api.rate_limit import identify
from core import api_keys
from core.config import Settings
from core.rate_limit import Decision, Limit, group_of, limit_for
from core.security import create_token


@pytest.mark.parametrize(
    "path, method, group",
    [
        ("/healthz", "GET", None),
        ("/readyz", "GET", None),
        ("/metrics", "GET", None),
        ("/api/v1/webhooks/bank", "POST", None),
        ("/api/v1/auth/login", "POST", "auth"),
        ("/api/v1/auth/password-reset", "POST", "auth"),  # the identity work's endpoints, when they land
        ("/api/v1/auth/mfa/verify", "POST", "auth"),
        ("/api/v1/signup", "POST", "auth"),
        ("/api/v1/signups/verify", "GET", "auth"),
        ("/api/v1/approvals/abc/decisions", "POST", "decisions"),
        ("/api/v1/approvals/inbox", "GET", "reads"),
        ("/api/v1/payments", "POST", "writes"),
        ("/api/v1/bills/x", "DELETE", "writes"),
        ("/api/v1/payments", "GET", "reads"),
    ],
)
def test_endpoint_groups(path, method, group):
    assert group_of(path, method) == group


def test_a_limit_is_a_burst_refilled_over_its_period_times_the_tier():
    settings = Settings(rate_limit_reads="5/minute", rate_limit_tiers={"superuser": 4, "anonymous": 0.01})
    assert limit_for(settings, "reads", "member") == Limit(5, 5 / 60)  # a role without a tier: 1
    assert limit_for(settings, "reads", "superuser") == Limit(20, 20 / 60)
    assert limit_for(settings, "reads", "anonymous").capacity == 1  # never below one request


@pytest.mark.parametrize("spec", ["0/minute", "5/fortnight", "5", "-1/second", "5/ minute"])
def test_a_malformed_limit_is_refused_at_start(spec):
    with pytest.raises(ValueError):
        Settings(rate_limit_auth=spec)


def test_the_headers_of_an_allowed_and_a_refused_request():
    allowed = Decision.of(tokens=3.5, capacity=5, rate=5 / 60, allowed=True)
    assert allowed.headers() == {"RateLimit-Limit": "5", "RateLimit-Remaining": "3", "RateLimit-Reset": "18"}
    refused = Decision.of(tokens=0.25, capacity=5, rate=5 / 60, allowed=False)
    assert refused.headers()["Retry-After"] == "9"  # 0.75 of a token at one per 12 s
    assert refused.remaining == 0 and refused.reset == 57


def test_whom_a_request_counts_against():
    settings = Settings(access_token_ttl=timedelta(minutes=5))
    token, _, _ = create_token(settings, subject="u1", token_type="access", claims={"role": "operator"})
    client = ("10.0.0.7", 5555)

    def who(headers: dict):
        return identify(Headers(headers), client, settings)

    assert who({"Authorization": f"Bearer {token}"}).bucket == "user:u1"
    assert who({"Authorization": f"Bearer {token}"}).tier == "operator"
    # A token that does not verify (or none) counts against the address, whatever it claims.
    assert who({"Authorization": f"Bearer {token[:-2]}xx"}).bucket == "ip:10.0.0.7"
    assert who({}).tier == "anonymous"
    key, prefix, stored = api_keys.new_key()
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        presented = who(headers)  # the bucket statement checks the key and picks its bucket only if it is genuine
        assert (presented.key_prefix, presented.key_hash, presented.bucket) == (prefix, stored, "ip:10.0.0.7")
    assert who({"X-API-Key": "bo_garbage"}).key_prefix is None
    # With an Authorization header, X-API-Key is not read (as by the API itself).
    both = who({"Authorization": f"Bearer {token}", "X-API-Key": key})
    assert (both.bucket, both.key_prefix) == ("user:u1", None)
