"""The MilvusAlias status: kstatus conditions, the observed target, and the previous target with its times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from milvusops.core.alias_model import AliasSpec
from milvusops.core.alias_plan import Previous
from milvusops.core.alias_status import (
    UNKNOWN,
    AliasOutcome,
    build_alias_status,
    draining_of,
    previous_of,
    previous_status,
)
from milvusops.core.failures import Failure, Reason
from milvusops.core.model import ResourceRef

NOW = datetime(2026, 12, 7, 14, 0, 0, 250000, tzinfo=UTC)
SPEC = AliasSpec(alias="search", target_ref="green")
REF = ResourceRef(namespace="team", name="search", generation=3)


def _conditions(status: dict[str, object]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}  # type: ignore[attr-defined]


def test_in_sync_when_the_alias_points_at_the_target() -> None:
    status = build_alias_status(SPEC, REF, AliasOutcome(target="green", current="green"), {}, NOW)
    assert status["target"] == "green" and status["desiredTarget"] == "green" and status["observedGeneration"] == 3
    assert _conditions(status) == {
        "Ready": ("True", "InSync"),
        "Reconciling": ("False", "InSync"),
        "Stalled": ("False", "InSync"),
    }
    assert status["conditions"][0]["message"] == "alias search points at green"


def test_waiting_keeps_the_old_target_and_follows_the_target_s_reason() -> None:
    waiting = Failure(Reason.TARGET_NOT_READY, "target green is not ready (Loading: ...)")
    status = build_alias_status(SPEC, REF, AliasOutcome("green", "blue", failure=waiting), {}, NOW)
    assert status["target"] == "blue"
    assert _conditions(status)["Reconciling"] == ("True", "TargetNotReady")
    stalled = Failure(Reason.INDEX_NOT_FOUND, "target green is not ready (IndexNotFound: ...)")
    status = build_alias_status(SPEC, REF, AliasOutcome("green", "blue", failure=stalled), {}, NOW)
    assert _conditions(status) == {
        "Ready": ("False", "IndexNotFound"),
        "Reconciling": ("False", "IndexNotFound"),
        "Stalled": ("True", "IndexNotFound"),
    }


def test_a_pass_that_could_not_observe_keeps_what_status_knew() -> None:
    before = {"target": "blue", "desiredTarget": "green", "previous": {"collection": "red", "switchedAt": "x"}}
    unreachable = Failure(Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus")
    status = build_alias_status(SPEC, REF, AliasOutcome(current=UNKNOWN, failure=unreachable), before, NOW)
    assert (status["target"], status["desiredTarget"], status["previous"]) == ("blue", "green", before["previous"])
    gone = build_alias_status(SPEC, REF, AliasOutcome("green", current=None), before, NOW)
    assert "target" not in gone  # observed: the alias does not exist


def test_previous_round_trips_through_status_with_milliseconds() -> None:
    previous = Previous("blue", NOW - timedelta(seconds=2), NOW)
    written = previous_status(previous)
    assert written == {
        "collection": "blue",
        "switchedAt": "2026-12-07T13:59:58.250Z",
        "releasedAt": "2026-12-07T14:00:00.250Z",
    }
    assert previous_of({"previous": written}) == previous
    kept = Previous("blue", NOW, kept="not released: still wanted by team/blue")
    assert previous_of({"previous": previous_status(kept)}) == kept
    assert previous_of({"previous": {"collection": "blue", "switchedAt": "yesterday"}}) is None
    assert previous_of({}) is None


def test_draining_round_trips_and_is_kept_when_not_worked_out() -> None:
    red = Previous("red", NOW - timedelta(seconds=9), kept="not released: still wanted by alias x")
    status = build_alias_status(SPEC, REF, AliasOutcome("green", "green", draining=(red,)), {}, NOW)
    assert draining_of(status) == (red,)
    hand_edited = {**status, "draining": [*status["draining"], {"collection": "x"}, "junk"]}
    assert draining_of(hand_edited) == (red,)  # unreadable entries are skipped
    unreachable = AliasOutcome(current=UNKNOWN, failure=Failure(Reason.MILVUS_UNAVAILABLE, "down"))
    assert build_alias_status(SPEC, REF, unreachable, status, NOW)["draining"] == status["draining"]
    assert "draining" not in build_alias_status(SPEC, REF, AliasOutcome("green", "green", draining=()), status, NOW)


def test_paused() -> None:
    status = build_alias_status(SPEC, REF, AliasOutcome(paused=True), {"target": "blue"}, NOW)
    assert _conditions(status)["Ready"] == ("False", "Paused") and status["target"] == "blue"
