"""milvusops_resources counts each resource once, and a (ready, reason) no resource has is not exported."""

from __future__ import annotations

from prometheus_client import REGISTRY

from milvusops.telemetry.metrics import ReadyTally


def _series(ready: str, reason: str) -> float | None:
    return REGISTRY.get_sample_value("milvusops_resources", {"ready": ready, "reason": reason})


def test_a_paused_replica_drops_its_series_as_the_docs_say() -> None:
    tally = ReadyTally()
    tally.set("u1", "False", "TallyTestWaiting")
    tally.set("u2", "False", "TallyTestWaiting")
    assert _series("False", "TallyTestWaiting") == 2.0
    tally.set("u1", "True", "TallyTestDone")
    assert (_series("False", "TallyTestWaiting"), _series("True", "TallyTestDone")) == (1.0, 1.0)
    # a peering pause stops every daemon: each forgets its resource
    tally.forget("u1")
    tally.forget("u2")
    assert _series("False", "TallyTestWaiting") is None
    assert _series("True", "TallyTestDone") is None


def test_forgetting_an_unknown_resource_changes_nothing() -> None:
    tally = ReadyTally()
    tally.set("u1", "True", "TallyTestKept")
    tally.forget("never-seen")
    assert _series("True", "TallyTestKept") == 1.0
    tally.forget("u1")
