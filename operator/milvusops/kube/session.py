"""Kopf's HTTP session to the API server: Kopf's own credentials, with a bounded connection pool."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
import kopf

# Kopf reads these in a namespace as a pattern (glob, negation, list), whose matches are not known up front
_PATTERN_CHARACTERS = frozenset("*?[]!,")


def watch_streams(namespaces: Sequence[str], peering: bool) -> int | None:
    """How many watch requests Kopf keeps open, each holding a connection; None if patterns make it unknown."""
    if any(_PATTERN_CHARACTERS & set(namespace) for namespace in namespaces):
        return None
    per_namespace = 2 + int(peering)  # MilvusCollections, MilvusConnections, (Cluster)KopfPeerings
    return 2 + per_namespace * max(1, len(namespaces))  # + CRDs and Namespaces, watched by Kopf's discovery


def connection_limit(requests: int, namespaces: Sequence[str], peering: bool) -> int:
    """aiohttp's pool limit: `requests` at once besides the watch streams; 0 (no limit) when either is unbounded."""
    streams = watch_streams(namespaces, peering)
    return 0 if requests == 0 or streams is None else requests + streams


def session(info: kopf.ConnectionInfo, limit: int) -> kopf.AiohttpSession:
    """What Kopf builds from `info` itself, but with `limit` connections instead of one per concurrent request."""
    client = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        aiohttp_session=client,
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
    )
