"""Go tools the tests use (kustomize renders the Kubernetes manifests, kubeconform validates them, actionlint checks
the CI pipeline), built once from the Go module proxy into the same cache as the Temporal CLI (outside the clone,
reused by every clone and CI run)."""

import os
import shutil
import subprocess
import sys

from devstack.temporal_cli import _go, cache_dir

KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5@v5.7.1"
KUBECONFORM_MODULE = "github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0"
ACTIONLINT_MODULE = "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"


def ensure_tool(name: str, module: str) -> str:
    """The tool on PATH, else in the cache, else built there now."""
    for candidate in (shutil.which(name), str(cache_dir() / name)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    print(f"building {name} ({module}) into {target}, once", file=sys.stderr, flush=True)
    subprocess.run(
        [_go(), "install", module],
        check=True,
        env={**os.environ, "GOBIN": str(target), "GOFLAGS": "-buildvcs=false"},
    )
    return str(target / name)


def ensure_kustomize() -> str:
    return ensure_tool("kustomize", KUSTOMIZE_MODULE)


def ensure_actionlint() -> str:
    return ensure_tool("actionlint", ACTIONLINT_MODULE)


def ensure_kubeconform() -> str:
    return ensure_tool("kubeconform", KUBECONFORM_MODULE)
