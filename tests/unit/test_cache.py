"""The reference-data cache's own logic (core/cache): TTL, bypass while not listening, invalidation by row, by table
and of lists, loads that race an invalidation, the size bound, the detached copies and the Prometheus series. The
real LISTEN/NOTIFY across processes: tests/integration/test_cache.py."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import inspect

from core.cache.metrics import CacheMetrics
from core.cache.reference import Frozen
from core.cache.store import Cache, Result
from models.interest import SavingsProduct
from models.users import User


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts its calls; returns the current `value`."""

    def __init__(self, value: object = "v1") -> None:
        self.value, self.calls = value, 0

    async def __call__(self) -> object:
        self.calls += 1
        return self.value


def listening_cache(ttl: float = 30.0, max_entries: int = 100) -> tuple[Cache, Clock]:
    clock = Clock()
    cache = Cache(ttl, max_entries, clock=clock)
    cache.set_listening(True)
    return cache, clock


async def test_a_second_read_is_a_hit_until_the_ttl_passes():
    cache, clock = listening_cache(ttl=30)
    load = Loader()
    assert [await cache.get("users", "a", load) for _ in range(3)] == ["v1"] * 3
    assert load.calls == 1
    assert cache.counts["users", Result.miss] == 1 and cache.counts["users", Result.hit] == 2
    load.value = "v2"
    clock.now += 29.9
    assert await cache.get("users", "a", load) == "v1"
    clock.now += 0.2  # past the TTL: read again
    assert await cache.get("users", "a", load) == "v2"
    assert load.calls == 2


async def test_nothing_is_served_or_kept_while_not_listening_or_with_a_ttl_of_zero():
    cache = Cache(30)  # no listener yet
    load = Loader()
    await cache.get("users", "a", load)
    await cache.get("users", "a", load)
    assert load.calls == 2 and len(cache) == 0
    assert cache.counts["users", Result.bypass] == 2

    off = Cache(0)
    off.set_listening(True)
    await off.get("users", "a", load)
    await off.get("users", "a", load)
    assert load.calls == 4 and off.counts["users", Result.bypass] == 2 and not off.enabled


async def test_the_listener_going_down_drops_every_entry_and_coming_back_starts_empty():
    cache, _ = listening_cache()
    load = Loader()
    await cache.get("users", "a", load)
    cache.set_listening(False)
    assert len(cache) == 0
    load.value = "changed while nobody listened"
    assert await cache.get("users", "a", load) == load.value  # bypass: the database
    cache.set_listening(True)
    assert await cache.get("users", "a", load) == load.value
    assert [cache.counts["users", r] for r in Result] == [0, 2, 1]  # hit, miss, bypass


async def test_a_row_change_drops_that_row_and_the_lists_of_its_table_only():
    cache, _ = listening_cache()
    loads = {key: Loader(key) for key in ("a", "b", None, "p")}
    for key in ("a", "b", None):
        await cache.get("users", key, loads[key])
    await cache.get("loan_products", "p", loads["p"])

    cache.apply("users:a")  # what the trigger sends for a row
    for key in ("a", "b", None):
        await cache.get("users", key, loads[key])
    await cache.get("loan_products", "p", loads["p"])
    assert {key: load.calls for key, load in loads.items()} == {"a": 2, "b": 1, None: 2, "p": 1}

    cache.apply("users")  # a TRUNCATE: the whole table
    for key in ("a", "b", None):
        await cache.get("users", key, loads[key])
    await cache.get("loan_products", "p", loads["p"])
    assert {key: load.calls for key, load in loads.items()} == {"a": 3, "b": 2, None: 3, "p": 1}


async def test_a_load_that_raced_an_invalidation_is_returned_but_not_kept():
    cache, _ = listening_cache()

    async def load_then_change() -> str:
        value = "read before the change committed"
        cache.apply("users:a")  # the notification arrives while the read is in flight
        return value

    assert await cache.get("users", "a", load_then_change) == "read before the change committed"
    assert len(cache) == 0

    async def load_across_a_reconnect() -> str:
        cache.set_listening(False)
        cache.set_listening(True)
        return "read while changes went unheard"

    await cache.get("users", "a", load_across_a_reconnect)
    assert len(cache) == 0

    async def load_of_another_table_changing() -> str:
        cache.apply("loan_products:p")
        return "unaffected"

    await cache.get("users", "a", load_of_another_table_changing)
    assert len(cache) == 1


async def test_none_is_never_kept():
    cache, _ = listening_cache()
    load = Loader(None)
    assert await cache.get("users", "missing", load) is None
    assert await cache.get("users", "missing", load) is None
    assert load.calls == 2


async def test_a_full_cache_drops_expired_entries_first_then_the_oldest():
    cache, clock = listening_cache(ttl=10, max_entries=3)
    await cache.get("users", "old", Loader())
    clock.now += 5
    await cache.get("users", "b", Loader())
    await cache.get("users", "c", Loader())
    clock.now += 6  # "old" has expired, b and c have not
    await cache.get("users", "d", Loader())
    assert len(cache) == 3
    again = Loader()
    for key in ("b", "c", "d"):
        await cache.get("users", key, again)
    assert again.calls == 0
    await cache.get("users", "e", Loader())  # nothing expired: b, the oldest, goes
    await cache.get("users", "b", again)
    assert again.calls == 1 and len(cache) == 3


def a_user(**overrides) -> User:
    values = dict(
        id=uuid.uuid4(),
        email="dana@tests.example",
        full_name="Dana",
        hashed_password="$argon2id$secret",
        role="operator",
        org_id=uuid.uuid4(),
        is_active=True,
        kyc_status="verified",
        member_type="consumer",
        created_at=datetime.now(UTC),
    )
    return User(**{**values, **overrides})


def test_a_frozen_row_thaws_into_a_new_detached_copy_each_time():
    row = a_user()
    frozen = Frozen.of(row, hashed_password="")
    first, second = frozen.thaw(), frozen.thaw()
    assert first is not second and first is not row
    assert inspect(first).transient  # in no session: nothing it is given to flushes it
    assert (first.id, first.role, first.org_id, first.is_active) == (row.id, row.role, row.org_id, row.is_active)
    assert first.hashed_password == ""  # the hash stays out of the cache
    first.role = "superuser"
    assert frozen.thaw().role == "operator"


def test_json_values_are_copied_on_each_thaw():
    product = SavingsProduct(
        id=uuid.uuid4(),
        name="Tiered",
        annual_rate=Decimal("0"),
        tiers=[{"up_to": "1000.00", "rate": "0.01"}],
        day_count="actual/365",
        active=True,
    )
    frozen = Frozen.of(product)
    thawed = frozen.thaw()
    assert thawed.tiers is not None
    thawed.tiers[0]["rate"] = "0.99"
    assert frozen.thaw().tiers == [{"up_to": "1000.00", "rate": "0.01"}]


async def test_the_metrics_count_each_result_and_say_whether_the_cache_is_served():
    cache, _ = listening_cache()
    load = Loader()
    await cache.get("users", "a", load)
    await cache.get("users", "a", load)
    registry = CollectorRegistry()
    registry.register(CacheMetrics(cache))

    def scrape() -> dict:
        text = generate_latest(registry).decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    samples = scrape()
    requests = "backoffice_cache_requests_total"
    assert samples[requests, (("cache", "users"), ("result", "hit"))] == 1
    assert samples[requests, (("cache", "users"), ("result", "miss"))] == 1
    assert samples[requests, (("cache", "approval_rules"), ("result", "bypass"))] == 0  # every series from the start
    assert samples["backoffice_cache_listening", ()] == 1
    cache.set_listening(False)
    assert scrape()["backoffice_cache_listening", ()] == 0
