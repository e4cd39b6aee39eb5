"""The benchmarks' open-loop driver (bench/open_loop.py): arrivals keep their schedule when answers are slow, and
the time a request waits for a free slot counts in its latency."""

import asyncio

from bench.open_loop import arrival_times, open_loop, percentile


def test_arrivals_are_evenly_spaced_at_the_rate():
    assert arrival_times(4, 3) == [0.0, 0.25, 0.5]


async def test_queueing_behind_a_slow_answer_counts_in_the_latency():
    async def slow() -> None:
        await asyncio.sleep(0.2)

    async def failing() -> str:
        return "refused"

    outcome = await open_loop(100, [("a", slow), ("a", slow), ("b", failing)], max_in_flight=1)
    first, second = sorted(outcome.latencies["a"])
    assert 0.19 < first < 0.3
    # Scheduled 10 ms after the first, it could start only once the first had answered: ~0.39 s from its arrival.
    assert 0.35 < second < 0.5
    assert outcome.errors["b"] == ["refused"] and outcome.late_starts == 2


def test_percentiles():
    values = [i / 1000 for i in range(1, 1001)]
    assert abs(percentile(values, 95) - 0.95) < 0.002 and percentile([0.3], 99) == 0.3
