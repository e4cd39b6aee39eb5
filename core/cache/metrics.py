"""The cache's series for Prometheus: the hit rate of each cache is
`rate(backoffice_cache_requests_total{result="hit"}[5m]) / rate(backoffice_cache_requests_total[5m])`.

One API process: read from the cache's counts at scrape time (`CacheMetrics`). Several (api/serve.py): each
process writes its counts to Prometheus's multiprocess files as they happen (`SharedCacheMetrics`), so the one
process a scrape reaches answers for all of them.
"""

from collections.abc import Iterator

from prometheus_client import Counter, Gauge
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.cache.reference import APPROVAL_RULES, LOAN_PRODUCTS, SAVINGS_PRODUCTS, USERS
from core.cache.store import Cache, Result

NAMES = (USERS, LOAN_PRODUCTS, SAVINGS_PRODUCTS, APPROVAL_RULES)
REQUESTS_HELP = (
    "Reads of the reference-data cache, by cache and result: hit, miss (read from the database and kept), "
    "bypass (the cache is off or its listener is down: read from the database)"
)
LISTENING_HELP = "1 while the process listens for changes (its cache is served), 0 while it is bypassed"


class CacheMetrics(Collector):
    def __init__(self, cache: Cache):
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("backoffice_cache_requests", REQUESTS_HELP, labels=["cache", "result"])
        for name in NAMES:  # every series from the start, zero until used
            for result in Result:
                requests.add_metric([name, result], self.cache.counts[name, result])
        yield requests
        yield GaugeMetricFamily(
            "backoffice_cache_listening", LISTENING_HELP, value=float(self.cache.enabled and self.cache.listening)
        )


class SharedCacheMetrics:
    """The same series in Prometheus's multiprocess mode: counts summed over the processes; listening is the
    lowest among the live ones (0 if any process serves its reads from the database)."""

    def __init__(self, cache: Cache):
        # No registry: in multiprocess mode the values live in the shared files, read by the MultiProcessCollector.
        self.requests = Counter("backoffice_cache_requests", REQUESTS_HELP, ["cache", "result"], registry=None)
        self.listening_gauge = Gauge(
            "backoffice_cache_listening", LISTENING_HELP, registry=None, multiprocess_mode="livemin"
        )
        self.enabled = cache.enabled
        for name in NAMES:  # every series from the start, zero until used
            for result in Result:
                self.requests.labels(name, result)
        self.listening(cache.listening)
        cache.observers.append(self)

    def counted(self, name: str, result: Result) -> None:
        self.requests.labels(name, result).inc()

    def listening(self, listening: bool) -> None:
        self.listening_gauge.set(float(self.enabled and listening))
