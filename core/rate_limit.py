"""Rate limits: a token bucket per endpoint group and identity, kept in Postgres so that every API process shares it.

* **Groups** (`group_of`): `auth` (sign-in, refresh, and whatever lands under /api/v1/auth/ or /api/v1/signup:
  password reset, MFA, sign-up), `decisions` (approval decisions), `reads` (GET, HEAD, OPTIONS) and `writes` (the
  rest). Health, readiness and metrics are never limited, nor the bank's signed webhooks (refusing them would only
  delay money: the bank sends again).
* **Identity**: the user of a valid access token, an API key that is genuine (checked in the same statement), else
  the client's IP address (uvicorn's `--forwarded-allow-ips` decides whether a proxy's X-Forwarded-For is believed).
* **Limits**: `RATE_LIMIT_<GROUP>` ("N/minute": a bucket of N tokens refilled at N per minute), times the tier of
  the identity's role (`RATE_LIMIT_TIERS`; `anonymous` and `api_key` are tiers too).
* **One statement per request** (`TAKE`): an UPSERT that refills the bucket for the time since its last request,
  takes a token when there is one, and returns what is left. Row-locked by the upsert, so two processes never take
  the same token; on an autocommit pool without pre-ping, so that it is one round trip.
"""

import logging
import math
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from core.config import Settings
from core.db import sqlalchemy_url

log = logging.getLogger("security")

GROUPS = ("auth", "reads", "writes", "decisions")
EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
EXEMPT_PREFIXES = ("/api/v1/webhooks/",)
AUTH_PREFIXES = ("/api/v1/auth/", "/api/v1/signup")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DECISION = re.compile(r"^/api/v1/approvals/[^/]+/decisions$")
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# A bucket idle this long (the longest period a limit has) is full again: as good as absent, so retention deletes it.
IDLE_BUCKET_RETENTION = timedelta(seconds=max(_PERIODS.values()))


@dataclass(frozen=True)
class Limit:
    capacity: float  # the burst: tokens in a full bucket
    rate: float  # tokens per second

    @classmethod
    def parse(cls, spec: str, tier: float = 1.0) -> "Limit":
        count, period = spec.split("/")
        capacity = max(1.0, int(count) * tier)
        return cls(capacity, capacity / _PERIODS[period])


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until a token is there (0 when allowed)

    @classmethod
    def of(cls, tokens: float, capacity: float, rate: float, allowed: bool) -> "Decision":
        return cls(
            allowed=allowed,
            limit=int(capacity),
            remaining=max(0, math.floor(tokens)),
            reset=max(0, math.ceil((capacity - tokens) / rate)),
            retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
        )

    def headers(self) -> dict[str, str]:
        """The IETF draft's RateLimit-* fields (draft-ietf-httpapi-ratelimit-headers), and Retry-After on a refusal."""
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


def group_of(path: str, method: str) -> str | None:
    """The endpoint group of a request; None for what is never limited."""
    if path in EXEMPT or path.startswith(EXEMPT_PREFIXES):
        return None
    if path.startswith(AUTH_PREFIXES):
        return "auth"
    if method.upper() in READ_METHODS:
        return "reads"
    if _DECISION.match(path):
        return "decisions"
    return "writes"


def limit_for(settings: Settings, group: str, tier: str) -> Limit:
    spec = getattr(settings, f"rate_limit_{group}")
    return Limit.parse(spec, settings.rate_limit_tiers.get(tier, 1.0))


# The bucket of `:key_bucket` when the API key (:prefix, :hash) is genuine, else of `:bucket`; refilled for the time
# since its last request (never past its capacity), a token taken when there is a whole one.
_REFILL = "LEAST(excluded.capacity, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM excluded.updated_at - b.updated_at)) * excluded.rate)"
TAKE = text(f"""
WITH who AS (
    SELECT EXISTS (SELECT 1 FROM api_keys WHERE prefix = CAST(:prefix AS text) AND secret_hash = CAST(:hash AS text))
        AS is_key
)
INSERT INTO rate_limit_buckets AS b (key, tokens, capacity, rate, allowed, updated_at)
SELECT
    CASE WHEN is_key THEN CAST(:key_bucket AS text) ELSE CAST(:bucket AS text) END,
    CASE WHEN is_key THEN CAST(:key_capacity AS float8) ELSE CAST(:capacity AS float8) END - 1,
    CASE WHEN is_key THEN CAST(:key_capacity AS float8) ELSE CAST(:capacity AS float8) END,
    CASE WHEN is_key THEN CAST(:key_rate AS float8) ELSE CAST(:rate AS float8) END,
    true,
    clock_timestamp()
FROM who
ON CONFLICT (key) DO UPDATE SET
    tokens = CASE WHEN {_REFILL} >= 1 THEN {_REFILL} - 1 ELSE {_REFILL} END,
    allowed = {_REFILL} >= 1,
    capacity = excluded.capacity,
    rate = excluded.rate,
    updated_at = excluded.updated_at
RETURNING b.tokens, b.capacity, b.rate, b.allowed
""")


@dataclass(frozen=True)
class Identity:
    """Who a request counts against: `bucket` (e.g. "user:<id>", "ip:<address>") with its `tier`, or, when the
    request presents an API key that the statement finds genuine, the key's bucket with the `api_key` tier."""

    bucket: str
    tier: str
    key_prefix: str | None = None
    key_hash: str | None = None


class RateLimiter:
    """The buckets in Postgres, on a small autocommit pool of its own (no BEGIN/COMMIT, no pre-ping: one round trip
    per check)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        size = settings.rate_limit_pool_size
        self.engine = create_async_engine(
            sqlalchemy_url(settings.database_url), pool_size=size, max_overflow=size, isolation_level="AUTOCOMMIT"
        )

    async def take(self, group: str, who: Identity) -> Decision:
        limit = limit_for(self.settings, group, who.tier)
        key_limit = limit_for(self.settings, group, "api_key")
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    TAKE,
                    {
                        "prefix": who.key_prefix,
                        "hash": who.key_hash,
                        "bucket": f"{group}|{who.bucket}",
                        "capacity": limit.capacity,
                        "rate": limit.rate,
                        "key_bucket": f"{group}|key:{who.key_prefix}",
                        "key_capacity": key_limit.capacity,
                        "key_rate": key_limit.rate,
                    },
                )
            ).one()
        return Decision.of(row.tokens, row.capacity, row.rate, row.allowed)

    async def close(self) -> None:
        await self.engine.dispose()
