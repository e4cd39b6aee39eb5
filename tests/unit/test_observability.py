"""The observability files under deploy/observability hold together: the alert rules and the dashboards parse as
PromQL (promql-parser, the Rust PromQL parser), every series they read is one that something exports (ours, from
the API's real registry; the Temporal SDK's; the Temporal server's), the alerts the runbook names exist, the
dashboards use the provisioned data sources, and Prometheus scrapes the jobs the rules select.

promtool (`promtool check rules`, `promtool test rules deploy/observability/prometheus/tests/*.yml`) takes longer to
build from the module proxy than this suite may spend, so these checks run in Python; see
deploy/observability/promtool_check.sh runs promtool by hand (it passed on these files when they were written)."""

import json

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.http_metrics import HttpMetrics
from core.business_metrics import BusinessMetrics, Snapshot
from core.cache.metrics import CacheMetrics
from core.cache.store import Cache
from core.config import Settings
from devstack.processes import ROOT

OBSERVABILITY = ROOT / "deploy" / "observability"
RULES = sorted((OBSERVABILITY / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json"))

# The Temporal Python SDK's worker metrics (sdk-core, Prometheus exporter: counters without _total, durations in ms):
# https://docs.temporal.io/references/sdk-metrics. tests/integration/test_metrics.py checks the live ones are here.
TEMPORAL_SDK_SERIES = {
    f"temporal_{name}{suffix}"
    for name, suffixes in {
        "request": [""],
        "request_failure": [""],
        "request_latency": ["_bucket", "_count", "_sum"],
        "long_request": [""],
        "long_request_failure": [""],
        "long_request_latency": ["_bucket", "_count", "_sum"],
        "num_pollers": [""],
        "worker_start": [""],
        "worker_task_slots_available": [""],
        "worker_task_slots_used": [""],
        "workflow_completed": [""],
        "workflow_failed": [""],
        "workflow_canceled": [""],
        "workflow_continue_as_new": [""],
        "workflow_endtoend_latency": ["_bucket", "_count", "_sum"],
        "workflow_task_execution_failed": [""],
        "workflow_task_execution_latency": ["_bucket", "_count", "_sum"],
        "workflow_task_replay_latency": ["_bucket", "_count", "_sum"],
        "workflow_task_schedule_to_start_latency": ["_bucket", "_count", "_sum"],
        "workflow_task_queue_poll_empty": [""],
        "workflow_task_queue_poll_succeed": [""],
        "activity_execution_failed": [""],
        "activity_execution_cancelled": [""],
        "activity_execution_latency": ["_bucket", "_count", "_sum"],
        "activity_schedule_to_start_latency": ["_bucket", "_count", "_sum"],
        "activity_succeed_endtoend_latency": ["_bucket", "_count", "_sum"],
        "activity_poll_no_task": [""],
        "sticky_cache_hit": [""],
        "sticky_cache_miss": [""],
        "sticky_cache_size": [""],
        "sticky_cache_total_forced_eviction": [""],
    }.items()
    for suffix in suffixes
}

# The Temporal server's (common/metrics/metric_defs.go of the server version docker-compose.yml runs, 1.29).
TEMPORAL_SERVER_SERIES = {
    "schedule_missed_catchup_window",
    "schedule_rate_limited",
    "schedule_buffer_overruns",
    "schedule_action_success",
    "schedule_action_attempt",
    "schedule_action_errors",
    "service_requests",
    "service_error_with_type",
    "persistence_requests",
    "persistence_error_with_type",
}

PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

# The alerts the runbook (README: Operations guide, Alerts) explains, by what they watch.
REQUIRED_ALERTS = {
    "BackofficeApiErrorRateHigh",  # error rate over threshold
    "BackofficeWorkflowTaskFailures",
    "BackofficeScheduleMissedRuns",
    "BackofficePaymentsStuck",
    "BackofficeDeadLetters",
    "BackofficeDatabaseUnreachable",
    "BackofficeTemporalUnreachable",
}


def our_series() -> set[str]:
    """Every series name the API's /metrics can export, from the real collectors (no database needed)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    http = HttpMetrics(registry)
    http.requests.labels("GET", "/healthz", "200").inc()
    http.duration.labels("GET", "/healthz").observe(0.01)

    async def no_temporal() -> None:
        return None

    business = BusinessMetrics(lambda: None, no_temporal, Settings())  # type: ignore[arg-type, return-value]
    rows = {("payments", "queued"): 1.0, ("returns", "R01"): 1.0}
    business._snapshot = Snapshot(database_up=True, temporal_up=True, period="2026-11", rows=rows)
    registry.register(business)
    registry.register(CacheMetrics(Cache(ttl_seconds=30)))
    text = generate_latest(registry).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


KNOWN_SERIES = our_series() | TEMPORAL_SDK_SERIES | TEMPORAL_SERVER_SERIES | PROMETHEUS_SERIES


def series_read_by(expr: str) -> list[str]:
    """The metric names an expression selects (raises ValueError on a PromQL syntax error)."""
    names: list[str] = []
    promql_parser.walk(
        promql_parser.parse(expr),
        # A selector without a metric name ({__name__=~...}) reads as "": unknown, so reported.
        pre_visit=lambda node: (
            names.append(node.name or "") if isinstance(node, promql_parser.VectorSelector) else None
        ),
    )
    return names


def alert_rules() -> list[dict]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_the_named_series_are_exported():
    for name in (
        "backoffice_http_requests_total",
        "backoffice_http_request_duration_seconds_bucket",
        "backoffice_payments",
        "backoffice_payment_returns",
        "backoffice_approvals_past_deadline",
        "backoffice_interest_posting_accounts",
        "backoffice_dead_letters",
        "backoffice_payments_stuck",
        "backoffice_dependency_up",
        "backoffice_cache_requests_total",
        "backoffice_cache_listening",
    ):
        assert name in KNOWN_SERIES, name


def test_the_reference_check_catches_an_unknown_series_and_bad_promql():
    assert series_read_by('max(backoffice_payments_stuck) > 0 or up{job="api"} == 0') == [
        "backoffice_payments_stuck",
        "up",
    ]
    assert "backoffice_payment_stuck" not in KNOWN_SERIES  # a typo would be reported
    with pytest.raises(ValueError):
        series_read_by("sum(rate(backoffice_http_requests_total[5m])")


def test_every_alert_parses_reads_known_series_and_says_what_it_is():
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    assert len({rule["alert"] for rule in rules}) == len(rules), "alert names are unique"
    for rule in rules:
        names = series_read_by(rule["expr"])
        assert names, rule["alert"]
        unknown = set(names) - KNOWN_SERIES
        assert not unknown, f"{rule['alert']} reads series nothing exports: {unknown}"
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])


def test_the_runbook_explains_every_alert():
    runbook = (ROOT / "README.md").read_text()
    for rule in alert_rules():
        assert f"##### {rule['alert']}" in runbook, rule["alert"]


def test_the_promtool_unit_tests_name_existing_alerts_and_the_rules_file():
    for path in (OBSERVABILITY / "prometheus" / "tests").glob("*.yml"):
        spec = yaml.safe_load(path.read_text())
        assert [(path.parent / f).resolve() for f in spec["rule_files"]] == [r.resolve() for r in RULES]
        alerts = {rule["alert"] for rule in alert_rules()}
        for case in spec["tests"]:
            for check in case["alert_rule_test"]:
                assert check["alertname"] in alerts
            for series in case["input_series"]:
                assert set(series_read_by(series["series"])) <= KNOWN_SERIES, series["series"]


def test_prometheus_scrapes_the_jobs_the_rules_select_and_loads_the_rules_where_compose_mounts_them():
    config = yaml.safe_load((OBSERVABILITY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"api", "worker", "temporal"} <= jobs
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "./deploy/observability/prometheus/rules:/etc/prometheus/rules:ro" in compose
    for rule in alert_rules():
        for job in ("api", "worker", "temporal"):
            if f'job="{job}"' in rule["expr"]:
                assert job in jobs


def test_dashboards_parse_use_provisioned_data_sources_and_read_known_series():
    datasources = yaml.safe_load(
        (OBSERVABILITY / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text()
    )["datasources"]
    uids = {source["uid"]: source["type"] for source in datasources}
    assert uids == {"prometheus": "prometheus", "jaeger": "jaeger"}
    assert len(DASHBOARDS) >= 3
    seen_uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] not in seen_uids
        seen_uids.add(dashboard["uid"])
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            assert uids[panel["datasource"]["uid"]] == panel["datasource"]["type"], (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                unknown = set(series_read_by(target["expr"])) - KNOWN_SERIES
                assert not unknown, f"{path.name} / {panel['title']} reads series nothing exports: {unknown}"


def test_compose_wires_grafana_provisioning_and_tracing():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"prometheus", "grafana", "jaeger"} <= set(services)
    grafana_volumes = services["grafana"]["volumes"]
    assert "./deploy/observability/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana_volumes
    assert "./deploy/observability/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana_volumes
    app_env = services["api"]["environment"]
    assert app_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert services["worker"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert services["temporal"]["environment"]["PROMETHEUS_ENDPOINT"] == "0.0.0.0:9090"
    for path in OBSERVABILITY.rglob("*"):
        if path.is_file() and path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(path.read_text())
