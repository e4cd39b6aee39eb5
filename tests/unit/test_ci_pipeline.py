"""The GitHub Actions pipeline (.github/workflows/ci.yml) passes actionlint, and has the stages a bank's change
process expects: tests (lint and types inside), an image, staging, a manual approval before production, and a
rollback when a rollout does not become healthy."""

import shutil
import subprocess
from pathlib import Path

import yaml

from devstack.go_tools import ensure_actionlint

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / ".github" / "workflows" / "ci.yml"


def actionlint(workflow: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ensure_actionlint(), str(workflow)], cwd=cwd, capture_output=True, text=True)


def test_the_pipeline_passes_actionlint():
    result = actionlint(PIPELINE, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_pipeline(tmp_path):
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.write_text(PIPELINE.read_text().replace("needs: [image, deploy-staging]", "needs: [image, staging]"))
    result = actionlint(broken, tmp_path)
    assert result.returncode != 0 and "staging" in result.stdout


def test_production_waits_for_staging_and_an_approval_and_a_failed_rollout_is_rolled_back():
    jobs = yaml.safe_load(PIPELINE.read_text())["jobs"]
    assert "bash .ci/run" in [step.get("run") for step in jobs["test"]["steps"]]  # make test: lint, types, tests
    assert jobs["image"]["needs"] == "test"
    assert jobs["deploy-staging"]["environment"] == "staging"
    assert set(jobs["deploy-production"]["needs"]) == {"image", "deploy-staging"}
    assert jobs["deploy-production"]["environment"] == "production"  # its required reviewers approve
    deploy = (ROOT / ".github" / "actions" / "deploy" / "action.yml").read_text()
    assert "rollout status" in deploy and "rollout undo" in deploy and "job/backoffice-migrate" in deploy
