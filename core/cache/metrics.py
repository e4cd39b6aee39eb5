"""The cache's series for Prometheus, read from its counts at scrape time: the hit rate of each cache is
`rate(backoffice_cache_requests_total{result="hit"}[5m]) / rate(backoffice_cache_requests_total[5m])`."""

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.cache.reference import APPROVAL_RULES, LOAN_PRODUCTS, SAVINGS_PRODUCTS, USERS
from core.cache.store import Cache, Result

NAMES = (USERS, LOAN_PRODUCTS, SAVINGS_PRODUCTS, APPROVAL_RULES)


class CacheMetrics(Collector):
    def __init__(self, cache: Cache):
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "backoffice_cache_requests",
            "Reads of the reference-data cache, by cache and result: hit, miss (read from the database and kept), "
            "bypass (the cache is off or its listener is down: read from the database)",
            labels=["cache", "result"],
        )
        for name in NAMES:  # every series from the start, zero until used
            for result in Result:
                requests.add_metric([name, result], self.cache.counts[name, result])
        yield requests
        yield GaugeMetricFamily(
            "backoffice_cache_listening",
            "1 while the process listens for changes (its cache is served), 0 while it is bypassed",
            value=float(self.cache.enabled and self.cache.listening),
        )
