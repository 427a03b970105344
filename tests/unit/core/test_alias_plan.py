"""The MilvusAlias decision: switch only to a serviceable target, release the previous one only once drained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from milvusops.core.alias_plan import (
    AliasAction,
    AliasObservation,
    AliasPlan,
    Previous,
    Readiness,
    drain_over,
    plan_alias,
)
from milvusops.core.failures import Reason

NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
READY, LOADING = Readiness(True), Readiness(False, "Loading", "loading: _default")
NO_INDEX = Readiness(False, "IndexNotFound", "index not found[collection=green]")
SWITCHED = Previous("blue", NOW - timedelta(seconds=5))


def _seen(current: str | None, readiness: Readiness = READY, **kwargs: Any) -> AliasObservation:
    fields: dict[str, Any] = {"target": "green", "previous": None, "release_after": None, "now": NOW}
    return AliasObservation(current, readiness=readiness, **{**fields, **kwargs})


@pytest.mark.parametrize(
    ("seen", "action", "reason"),
    [
        (_seen(None), AliasAction.CREATE, None),
        (_seen("blue"), AliasAction.ALTER, None),
        (_seen("green"), AliasAction.NONE, None),  # adopted, or already switched: no call
        (_seen("green", LOADING), AliasAction.NONE, None),  # pointing at it already: nothing to wait for
        (_seen("blue", LOADING), AliasAction.NONE, Reason.TARGET_NOT_READY),
        (_seen(None, LOADING), AliasAction.NONE, Reason.TARGET_NOT_READY),  # never created to a loading target
        (_seen("blue", NO_INDEX), AliasAction.NONE, Reason.INDEX_NOT_FOUND),  # the target's own reason passes
        (_seen("blue", Readiness(False)), AliasAction.NONE, Reason.TARGET_NOT_READY),  # not observed yet
    ],
)
def test_switches_only_to_a_ready_target(seen: AliasObservation, action: AliasAction, reason: Reason | None) -> None:
    planned = plan_alias(seen)
    assert planned.action == action and planned.release is None
    assert (planned.wait.reason if planned.wait else None) == reason


def test_a_waiting_alias_says_where_it_stays_and_why() -> None:
    wait = plan_alias(_seen("blue", NO_INDEX)).wait
    assert wait is not None and wait.stalled
    assert wait.message == (
        "target green is not ready (IndexNotFound: index not found[collection=green]); the alias stays on blue"
    )
    created = plan_alias(_seen(None, LOADING)).wait
    assert created is not None and not created.stalled and created.message.endswith("not created until then")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, AliasPlan(AliasAction.NONE)),  # no releasePrevious: never released
        ({"release_after": 3}, AliasPlan(AliasAction.NONE, release="blue")),  # 5 s since the switch
        ({"release_after": 30}, AliasPlan(AliasAction.NONE, recheck_in=25.0)),  # drain window not over
        ({"release_after": 5}, AliasPlan(AliasAction.NONE, release="blue")),  # exactly at its end
        (
            {"release_after": 3, "holders": ("team/blue",)},
            AliasPlan(AliasAction.NONE, kept="not released: still wanted by team/blue"),
        ),
        ({"release_after": 3, "previous_loaded": False}, AliasPlan(AliasAction.NONE, drained=True)),
        (
            {"release_after": 3, "previous": Previous("blue", SWITCHED.switched_at, NOW)},
            AliasPlan(AliasAction.NONE),  # released already
        ),
        ({"release_after": 3, "previous": Previous("green", SWITCHED.switched_at)}, AliasPlan(AliasAction.NONE)),
    ],
)
def test_releases_the_previous_target_after_the_drain_window(kwargs: dict[str, Any], expected: AliasPlan) -> None:
    assert plan_alias(_seen("green", **{"previous": SWITCHED, **kwargs})) == expected


def test_a_pending_switch_comes_before_any_release() -> None:
    """The alias moved away again (edited by hand): switching back first, the release waits for a later pass."""
    planned = plan_alias(_seen("red", previous=SWITCHED, release_after=0))
    assert planned == AliasPlan(AliasAction.ALTER, recheck_in=0.0)  # the next pass, at the end of the drain window


@pytest.mark.parametrize(
    ("previous", "after", "over"),
    [
        (None, 3, False),
        (SWITCHED, None, False),
        (SWITCHED, 3, True),
        (SWITCHED, 10, False),
        (Previous("blue", SWITCHED.switched_at, NOW), 3, False),
    ],
)
def test_drain_over_says_when_to_look_for_holders(previous: Previous | None, after: int | None, over: bool) -> None:
    assert drain_over(previous, after, NOW) is over
