"""bench.lib.resources.desired: a spec through a MilvusConnection names it; without one, the default connection."""

from __future__ import annotations

from bench.lib.resources import desired


def test_a_spec_through_a_connection_names_it() -> None:
    assert desired("c", None, "bench")["connectionRef"] == {"name": "bench"}
    assert desired("c", ["p1"], "bench")["connectionRef"] == {"name": "bench"}


def test_without_a_connection_the_spec_names_none() -> None:
    assert "connectionRef" not in desired("c", None)
    assert desired("c", ["p1", "p2"]) == {
        "collectionName": "c",
        "partitions": [{"name": "p1", "state": "Loaded"}, {"name": "p2", "state": "Loaded"}],
    }
