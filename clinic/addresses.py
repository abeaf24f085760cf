"""The caller's address, for the login limits and the audit trail alike."""

from __future__ import annotations

from django.conf import settings


def client_ip(request) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the caller's address. With no proxy in front (TRUSTED_PROXY_COUNT=0), the
    connection's own (REMOTE_ADDR): X-Forwarded-For is anyone's to write. Behind N trusted proxies, each of
    which appends the address it was reached from to X-Forwarded-For, the N-th entry from the right (django-
    ipware): what a client wrote into the header itself is further left and never chosen. A request that did
    not come through them all (too short a chain) is taken at REMOTE_ADDR."""
    proxies = settings.TRUSTED_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR") or None
    if not proxies:
        return remote
    from ipware import get_client_ip

    # ipware counts the proxies listed in the header: the last proxy's own address is REMOTE_ADDR, not listed.
    address, _routable = get_client_ip(
        request, proxy_count=proxies - 1, request_header_order=["HTTP_X_FORWARDED_FOR"], strict=False
    )
    return address or remote
