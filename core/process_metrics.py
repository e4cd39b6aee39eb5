"""The process_* series (memory, CPU, file descriptors) of each API process when several share a port.

In Prometheus's multiprocess mode a scrape reaches one process, and prometheus-client's ProcessCollector reads only
that one. So each process copies its own figures into the shared files every few seconds, as gauges labelled by its
pid (`liveall`: a process's series leave the files when its lifespan ends), and a scrape shows every process.

A process killed outright never reaches its lifespan's end: at each sample the others take the gauges of processes
that no longer run out of the files (its last memory, its cache's listening state), while its counts stay in the sums.
"""

import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from prometheus_client import Gauge, ProcessCollector, multiprocess

EVERY_SECONDS = 5.0
LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's: running
    return True


def forget_ended_processes() -> list[int]:
    """Takes the live gauges of processes that no longer run out of the multiprocess files; returns their pids."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    ended = {
        pid
        for path in directory.glob("gauge_live*.db")
        if (match := LIVE_GAUGE_FILE.fullmatch(path.name)) and not running(pid := int(match.group(1)))
    }
    for pid in ended:
        multiprocess.mark_process_dead(pid)
    return sorted(ended)


class ProcessSeries:
    def __init__(self) -> None:
        self.source = ProcessCollector(registry=None)
        self.gauges: dict[str, Gauge] = {}

    def sample(self) -> None:
        for family in self.source.collect():
            for sample in family.samples:
                gauge = self.gauges.get(sample.name)
                if gauge is None:
                    gauge = Gauge(sample.name, family.documentation, registry=None, multiprocess_mode="liveall")
                    self.gauges[sample.name] = gauge
                gauge.set(sample.value)


@asynccontextmanager
async def shared_process_series(every: float = EVERY_SECONDS) -> AsyncIterator[None]:
    """For the lifespan of one process of several: its series sampled now and every `every` seconds; at the end,
    this process's gauges (these and the cache's) leave the files, while its counts stay in the sums."""
    series = ProcessSeries()

    async def keep_sampling() -> None:
        while True:
            series.sample()
            forget_ended_processes()
            await asyncio.sleep(every)

    task = asyncio.create_task(keep_sampling())
    try:
        yield
    finally:
        task.cancel()
        multiprocess.mark_process_dead(os.getpid())
