"""Where production webhooks may go (core/webhook_targets.py): https to public addresses only."""

import pytest

from core.config import Settings
from core.webhook_targets import enforced, internal, resolved_refusal, url_refusal


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "::1",
        "fe80::1%eth0",
        "::ffff:10.0.0.1",
        "fc00::1",
        "100.64.0.1",
        "224.0.0.1",
    ],
)
def test_internal_addresses(address):
    assert internal(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:8.8.8.8"])
def test_public_addresses(address):
    assert not internal(address)


def test_production_urls_are_https_and_not_internal_literals():
    assert url_refusal("https://erp.example.com/hooks") is None
    assert url_refusal("https://93.184.216.34/hooks") is None
    assert url_refusal("http://erp.example.com/hooks") == "a webhook endpoint must be https://"
    assert url_refusal("https://169.254.169.254/latest") == "a webhook endpoint must be on a public address"
    assert url_refusal("https://[::1]:8443/") == "a webhook endpoint must be on a public address"


async def test_a_name_that_resolves_to_loopback_is_refused():
    assert await resolved_refusal("https://localhost/hooks") == "the endpoint's host resolves to an internal address"


def test_only_production_enforces():
    assert not enforced(Settings())
    assert enforced(Settings(environment="Production "))
