"""The API server session: Kopf's credentials, a connection limit that always leaves room for the watch streams."""

from __future__ import annotations

import kopf
import pytest

from milvusops.kube.session import connection_limit, session, watch_streams


@pytest.mark.parametrize(
    ("namespaces", "peering", "streams"),
    [
        ([], False, 4),  # discovery (CRDs; Namespaces only when namespaced, counted anyway) and both kinds
        ([], True, 5),  # + ClusterKopfPeerings
        (["team-a"], False, 4),
        (["team-a", "team-b"], True, 8),  # per namespace: both kinds and its KopfPeerings
    ],
)
def test_watch_streams_are_counted_per_namespace(namespaces: list[str], peering: bool, streams: int) -> None:
    assert watch_streams(namespaces, peering) == streams


@pytest.mark.parametrize("pattern", ["team-*", "team-?", "!kube-system", "team-a,team-b", "team-[ab]"])
def test_namespace_patterns_leave_the_pool_unbounded(pattern: str) -> None:
    # a pattern can match any number of namespaces: any fixed limit could be taken by watch streams alone
    assert watch_streams(["team-a", pattern], peering=True) is None
    assert connection_limit(32, ["team-a", pattern], peering=True) == 0


def test_limit_is_requests_plus_streams_and_zero_means_unbounded() -> None:
    assert connection_limit(32, ["team-a"], peering=True) == 32 + 5
    assert connection_limit(0, ["team-a"], peering=True) == 0


async def test_session_carries_the_credentials_and_the_limit() -> None:
    info = kopf.ConnectionInfo(
        server="https://127.0.0.1:6443", scheme="Bearer", token="t0ken", insecure=True, default_namespace="ns"
    )
    made = session(info, 37)
    try:
        assert made.aiohttp_session.connector is not None
        assert made.aiohttp_session.connector.limit == 37
        assert made.aiohttp_session.headers["Authorization"] == "Bearer t0ken"
        assert (made.server, made.default_namespace, made.priority) == (info.server, "ns", info.priority)
    finally:
        await made.aiohttp_session.close()
