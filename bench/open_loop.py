"""An open-loop load generator: requests leave at fixed times whatever the earlier ones are doing, and each
latency runs from its scheduled time, so time spent queueing (in the driver, the connection pool, the server)
counts. A closed loop (a fixed number of clients, each waiting for its answer) would slow down with the
server and hide exactly that queueing."""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    endpoint: str
    latency: float  # seconds from the scheduled time to the end of the answer
    ok: bool
    arrival: int = -1  # the request's place in the schedule (0 first), when it came from run_open_loop


@dataclass(frozen=True)
class Stats:
    count: int
    errors: int
    p50: float
    p95: float
    p99: float


def arrival_offsets(rate: float, seconds: float) -> list[float]:
    """When each request leaves, in seconds from the start: a fixed rate, one every 1/rate s."""
    if rate <= 0 or seconds <= 0:
        raise ValueError("rate and seconds must be positive")
    return [k / rate for k in range(math.floor(rate * seconds + 1e-9))]


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank q-th percentile: the smallest value with at least q % of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    return ordered[math.ceil(q / 100 * len(ordered)) - 1]


def stats(samples: list[Sample]) -> Stats:
    """Percentiles over every answer, errors included (a fast error is still an answer the client waited for)."""
    latencies = [s.latency for s in samples]
    return Stats(
        count=len(samples),
        errors=sum(not s.ok for s in samples),
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        p99=percentile(latencies, 99),
    )


def by_endpoint(samples: list[Sample]) -> dict[str, Stats]:
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.endpoint, []).append(sample)
    return {endpoint: stats(group) for endpoint, group in sorted(groups.items())}


def by_quarter(samples: list[Sample]) -> list[Stats]:
    """Stats of each quarter of the schedule, in order of arrival: whether latency grows as the run goes on."""
    ordered = sorted(samples, key=lambda s: s.arrival)
    size = math.ceil(len(ordered) / 4)
    return [stats(ordered[i : i + size]) for i in range(0, len(ordered), size)]


@dataclass(frozen=True)
class Run:
    samples: list[Sample]
    seconds: float  # from the first scheduled start to the last answer
    max_lag: float  # the latest the driver itself sent a request after its scheduled time


async def run_open_loop(rate: float, seconds: float, call: Callable[[int], Awaitable[tuple[str, bool]]]) -> Run:
    """Sends request k (`call(k)`, answering its endpoint's name and whether it succeeded) at k/rate s, for
    `seconds`, and waits for every answer."""
    samples: list[Sample] = []
    start = time.monotonic() + 0.05
    max_lag = 0.0

    async def one(k: int, at: float) -> None:
        endpoint, ok = await call(k)
        samples.append(Sample(endpoint, time.monotonic() - at, ok, k))

    tasks = []
    for k, offset in enumerate(arrival_offsets(rate, seconds)):
        at = start + offset
        if (delay := at - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        max_lag = max(max_lag, time.monotonic() - at)
        tasks.append(asyncio.create_task(one(k, at)))
    await asyncio.gather(*tasks)
    return Run(samples, time.monotonic() - start, max_lag)
