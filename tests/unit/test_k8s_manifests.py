"""The Kubernetes manifests (deploy/k8s) render with kustomize and every resource is valid, strictly (no unknown
field), against the Kubernetes API schemas of the version we target; the shape a production deployment needs is
there: probes, autoscaling, disruption budgets, migrations as a Job, secrets only by reference."""

import subprocess
from pathlib import Path

import pytest
import yaml

from devstack.go_tools import ensure_kubeconform, ensure_kustomize
from devstack.k8s_schemas import schema_location

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.33.0"
TARGETS = ["deploy/k8s/base", "deploy/k8s/overlays/production"]


def build(target: str) -> str:
    out = subprocess.run([ensure_kustomize(), "build", str(ROOT / target)], check=True, capture_output=True, text=True)
    return out.stdout


def render(target: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(build(target)) if doc]


def kubeconform(manifests: str) -> subprocess.CompletedProcess:
    """kubeconform, strict (no unknown field) against the target version's schemas; every kind must have one."""
    command = [ensure_kubeconform(), "-strict", "-summary", "-schema-location", schema_location(K8S_VERSION), "-"]
    return subprocess.run(command, input=manifests, capture_output=True, text=True)


@pytest.fixture(scope="module", params=TARGETS)
def resources(request) -> list[dict]:
    return render(request.param)


def by_kind(resources: list[dict], kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_resource_is_valid_for_the_kubernetes_api(target):
    manifests = build(target)
    result = kubeconform(manifests)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(1 for doc in yaml.safe_load_all(manifests) if doc)
    assert f"Valid: {count}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


def test_an_unknown_field_or_a_wrong_type_is_caught():
    manifests = build("deploy/k8s/base")
    for mistake, found in [
        (manifests.replace("httpGet:", "httpGett:", 1), "additional properties 'httpGett' not allowed"),
        (manifests.replace("replicas: 2", "replicas: two", 1), "got string, want null or integer"),
        (manifests.replace("kind: Deployment", "kind: Deploymint", 1), "could not find schema for Deploymint"),
    ]:
        assert mistake != manifests
        result = kubeconform(mistake)
        assert result.returncode != 0 and found in result.stdout, result.stdout


def test_api_and_worker_have_probes_autoscaling_and_disruption_budgets(resources):
    deployments = by_kind(resources, "Deployment")
    assert set(deployments) == {
        "backoffice-api",
        "backoffice-worker",
        "backoffice-worker-routine",
        "backoffice-worker-interactive",
    }
    api = deployments["backoffice-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for name, queue in [
        ("backoffice-worker", "money"),
        ("backoffice-worker-routine", "routine"),
        ("backoffice-worker-interactive", "interactive"),
    ]:
        worker = deployments[name]["spec"]["template"]["spec"]
        assert worker["containers"][0]["command"] == ["python", "worker.py", "--queues", queue]  # a pool per queue
        assert worker["containers"][0]["livenessProbe"]["httpGet"]["path"] == "/metrics"
        assert worker["terminationGracePeriodSeconds"] >= 60  # time for in-flight activities on a drain
    for name, deployment in deployments.items():
        hpa = by_kind(resources, "HorizontalPodAutoscaler")[name]
        assert hpa["spec"]["scaleTargetRef"]["name"] == name and hpa["spec"]["minReplicas"] >= 2
        pdb = by_kind(resources, "PodDisruptionBudget")[name]
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_migrations_run_as_a_job_and_secrets_come_only_from_a_secret_object(resources):
    job = by_kind(resources, "Job")["backoffice-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["alembic", "upgrade", "head"]
    assert not by_kind(resources, "Secret"), "no secret values are committed"
    for kind in ("Deployment", "Job"):
        for resource in by_kind(resources, kind).values():
            sources = resource["spec"]["template"]["spec"]["containers"][0]["envFrom"]
            assert {"secretRef": {"name": "backoffice-secrets"}} in sources
            assert {"configMapRef": {"name": "backoffice-config"}} in sources
    config = by_kind(resources, "ConfigMap")["backoffice-config"]["data"]
    assert config["ENVIRONMENT"] == "production"  # so the processes refuse development secrets


def test_the_production_overlay_pins_the_image_and_a_namespace():
    resources = render("deploy/k8s/overlays/production")
    assert by_kind(resources, "Namespace")
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == "backoffice"
    for deployment in by_kind(resources, "Deployment").values():
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.startswith("ghcr.io/backoffice/backoffice:") and not image.endswith(":latest")
