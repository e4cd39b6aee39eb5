"""docker-compose.yml stays valid: `docker compose config` accepts it (no engine needed), and it registers the
same search attributes the code uses."""

import subprocess

from core import search_attributes
from devstack.processes import ROOT


def test_docker_compose_config_accepts_the_file():
    result = subprocess.run(
        ["bash", str(ROOT / "devstack" / "compose_check.sh")], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_compose_registers_every_search_attribute():
    compose = (ROOT / "docker-compose.yml").read_text()
    for key in search_attributes.ALL:
        assert key.name in compose, key.name
