"""An open-loop load generator: requests arrive at a fixed rate whatever the server's answers take, and each
latency runs from the request's scheduled arrival, so time spent queued (behind a slow server, or behind the cap on
requests in flight) counts. A closed loop (N clients, each waiting for its answer before the next call) slows its
own arrivals down when the server slows, and hides exactly the queueing a steady stream of users would meet."""

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Outcome:
    latencies: dict[str, list[float]] = field(default_factory=dict)  # seconds, by label
    errors: dict[str, list[str]] = field(default_factory=dict)
    late_starts: int = 0  # arrivals that found every slot busy: the cap, not the server, delayed them
    elapsed: float = 0.0

    def record(self, label: str, seconds: float, error: str | None) -> None:
        self.latencies.setdefault(label, [])
        self.errors.setdefault(label, [])
        if error is None:
            self.latencies[label].append(seconds)
        else:
            self.errors[label].append(error)


def arrival_times(rate: float, count: int) -> list[float]:
    """Offsets (seconds from the start) of `count` arrivals at a steady `rate` a second."""
    return [i / rate for i in range(count)]


async def open_loop(
    rate: float,
    calls: list[tuple[str, Callable[[], Awaitable[str | None]]]],
    max_in_flight: int = 100,
) -> Outcome:
    """Runs each (label, call) at its arrival time, at most `max_in_flight` at once. A call returns None when it
    succeeded, else what went wrong."""
    outcome = Outcome()
    slots = asyncio.Semaphore(max_in_flight)
    start = time.perf_counter()

    async def one(at: float, label: str, call: Callable[[], Awaitable[str | None]]) -> None:
        delay = start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if slots.locked():
            outcome.late_starts += 1
        async with slots:
            try:
                error = await call()
            except Exception as exc:  # a failed request is a figure of the run, not the end of it
                error = f"{type(exc).__name__}: {exc}"
        outcome.record(label, time.perf_counter() - (start + at), error)

    await asyncio.gather(
        *(one(at, label, call) for at, (label, call) in zip(arrival_times(rate, len(calls)), calls, strict=True))
    )
    outcome.elapsed = time.perf_counter() - start
    return outcome


def percentile(latencies: list[float], p: float) -> float:
    """The p-th percentile (inclusive method; the one value of a single sample)."""
    if len(latencies) == 1:
        return latencies[0]
    return statistics.quantiles(latencies, n=1000, method="inclusive")[round(p * 10) - 1]
