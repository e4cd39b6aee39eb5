"""The read benchmark's pure pieces: the arrival schedule, the percentiles, the open loop's clock, the request mix,
the data set's shape and the cache metric's parsing."""

import asyncio

import pytest

from bench.api_reads import ENDPOINTS, Client, cache_counts, request_for
from bench.open_loop import Sample, arrival_offsets, by_endpoint, by_quarter, percentile, run_open_loop, stats
from bench.read_seed import Shape


def test_arrivals_are_evenly_spaced_at_the_rate():
    assert arrival_offsets(4, 1.5) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    assert len(arrival_offsets(50, 60)) == 3000
    with pytest.raises(ValueError):
        arrival_offsets(0, 10)


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([0.3], 99) == 0.3
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_stats_count_errors_and_group_by_endpoint():
    samples = [Sample("a", 0.01 * i, ok=i != 3) for i in range(1, 11)] + [Sample("b", 1.0, ok=False)]
    grouped = by_endpoint(samples)
    assert list(grouped) == ["a", "b"]
    assert (grouped["a"].count, grouped["a"].errors, grouped["a"].p50) == (10, 1, 0.05)
    assert grouped["b"].errors == 1
    assert stats(samples).p99 == 1.0


async def test_the_loop_does_not_wait_for_slow_answers():
    started: list[float] = []
    loop = asyncio.get_running_loop()

    async def slow(k: int) -> tuple[str, bool]:
        started.append(loop.time())
        await asyncio.sleep(0.5)
        return "slow", True

    run = await run_open_loop(100, 0.2, slow)  # 20 requests, 10 ms apart, each taking 0.5 s
    assert len(run.samples) == 20
    assert max(started) - min(started) < 0.4  # a closed loop of one client would take 9.5 s to start the last
    assert run.seconds < 1.2


async def test_latency_counts_queueing_from_the_scheduled_time():
    one_at_a_time = asyncio.Semaphore(1)

    async def serial(k: int) -> tuple[str, bool]:
        async with one_at_a_time:
            await asyncio.sleep(0.05)
        return "serial", True

    run = await run_open_loop(1000, 0.005, serial)  # 5 requests 1 ms apart, served one after the other
    latencies = sorted(s.latency for s in run.samples)
    assert latencies[0] >= 0.045
    assert latencies[-1] >= 0.24  # waited behind four others: ~0.25 s after it was due


def test_requests_cycle_clients_and_fall_back_to_a_list():
    no_loans = Client(role="member", org=1, accounts=["a1"], payments=["p1"], loans=[])
    staff = Client(role="operator", org=2, accounts=["a2"], payments=["p2"], loans=["l2"])
    names = {name for name, _, _ in ENDPOINTS}
    for k in range(400):
        client, name, path, _ = request_for(k, [no_loans, staff])
        assert client is (no_loans, staff)[k % 2]
        assert name in names and path.startswith("/api/v1/")
        if client is no_loans:
            assert "l2" not in path and not path.startswith("/api/v1/loans/")
    assert request_for(7, [staff]) == request_for(7, [staff])  # the same run every time


def test_shape_scales_with_payments():
    assert Shape.for_payments(1_000_000) == Shape(payments=1_000_000, orgs=100, accounts=10_000, loans=100_000)
    small = Shape.for_payments(20_000)
    assert (small.orgs, small.accounts, small.loans) == (2, 200, 2_000)
    assert small.accounts % small.orgs == 0


def test_cache_hit_rate_comes_from_the_counter_when_present():
    exposition = """# HELP backoffice_cache_requests_total Cache lookups.
# TYPE backoffice_cache_requests_total counter
backoffice_cache_requests_total{cache="users",result="hit"} 90.0
backoffice_cache_requests_total{cache="users",result="miss"} 10.0
backoffice_cache_requests_total{cache="products",result="hit"} 5.0
"""
    assert cache_counts(exposition) == (95.0, 105.0)
    assert cache_counts("# TYPE http_requests_total counter\nhttp_requests_total 3.0\n") is None


async def test_quarters_follow_the_schedule_not_the_order_of_answers():
    async def slower_later(k: int) -> tuple[str, bool]:
        await asyncio.sleep(0.2 - 0.02 * k)  # the later the arrival, the sooner it answers (20 ms apart)
        return "call", True

    run = await run_open_loop(1000, 0.008, slower_later)  # 8 requests 1 ms apart: answered last first
    assert [s.arrival for s in run.samples] != sorted(s.arrival for s in run.samples)
    quarters = by_quarter(run.samples)
    assert [q.count for q in quarters] == [2, 2, 2, 2]
    assert [q.p50 for q in quarters] == sorted((q.p50 for q in quarters), reverse=True)
    assert quarters[0].p50 > 2 * quarters[-1].p50
