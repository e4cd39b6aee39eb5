"""Where webhooks may go. In production (ENVIRONMENT=production) only https:// endpoints on public addresses: an org
admin's URL must not make our worker POST into our own network (the API, Postgres, the cloud's metadata service).
The URL is checked when it is subscribed, and the addresses its host resolves to before every delivery (a name may
come to point elsewhere). Development and tests send anywhere (the sandbox receiver is on loopback)."""

import asyncio
import ipaddress
from urllib.parse import urlsplit

from core.config import PRODUCTION, Settings


def enforced(settings: Settings) -> bool:
    return settings.environment.strip().lower() == PRODUCTION


def internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def url_refusal(url: str) -> str | None:
    """Why a production back office will not send to `url` as written (None: it may, if its host resolves to public
    addresses)."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "a webhook endpoint must be https://"
    try:
        if internal(parts.hostname or ""):
            return "a webhook endpoint must be on a public address"
    except ValueError:
        pass  # a name, not an address: its addresses are checked at each delivery
    return None


async def resolved_refusal(url: str) -> str | None:
    """`url_refusal`, and then whether its host resolves to an internal address (or to none)."""
    if refusal := url_refusal(url):
        return refusal
    parts = urlsplit(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443)
    except OSError as exc:
        return f"the endpoint's host does not resolve: {exc}"
    if any(internal(str(info[4][0])) for info in infos):
        return "the endpoint's host resolves to an internal address"
    return None
