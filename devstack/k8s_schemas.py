"""Standalone Kubernetes JSON schemas for kubeconform, made offline from the schemas the `kubernetes-validate`
wheel ships (no network here for kubeconform's default schema registry).

The wheel's schemas point into a shared `/api/_definitions.json`, which kubeconform cannot resolve from a local
directory; each kind's schema is rewritten with the definitions it reaches inlined under its own `$defs`, as
the `-standalone-strict` schemas of yannh/kubernetes-json-schema are. Built once per version into the tools cache.
"""

import copy
import json
import shutil
import tempfile
from pathlib import Path

import kubernetes_validate

from devstack.temporal_cli import cache_dir

_SHARED_REF = "/api/_definitions.json#/$defs/"


def _inline(schema: dict, definitions: dict) -> dict:
    """`schema` with every shared reference made local and the definitions it reaches copied under `$defs`."""
    reached: dict[str, dict] = {}
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and "#/$defs/" in ref:
                name = ref.split("#/$defs/", 1)[1]
                node["$ref"] = f"#/$defs/{name}"
                if name not in reached:
                    reached[name] = copy.deepcopy(definitions[name])
                    pending.append(reached[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return {**schema, "$defs": reached}


def standalone_schemas(version: str) -> Path:
    """The directory of `<kind>-<group>-<version>.json` standalone strict schemas for Kubernetes `version`."""
    target = cache_dir().parent / "k8s-schemas" / f"v{version}-standalone-strict"
    if target.is_dir():
        return target
    source = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=target.parent))
    for path in source.glob("*.json"):
        if path.name.startswith("_") or path.name == "all.json":
            continue
        (building / path.name).write_text(json.dumps(_inline(json.loads(path.read_text()), definitions)))
    try:
        building.rename(target)  # atomic: a concurrent build loses the race harmlessly
    except OSError:
        shutil.rmtree(building)
    return target


def schema_location(version: str) -> str:
    """kubeconform's -schema-location template for those schemas."""
    return str(standalone_schemas(version) / "{{ .ResourceKind }}{{ .KindSuffix }}.json")
