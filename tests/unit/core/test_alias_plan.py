"""The MilvusAlias decision: switch only to a serviceable target, release the previous one only once drained."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from milvusops.core.alias_plan import (
    MAX_DRAINING,
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
    assert planned.action == action and planned.releases == ()
    assert (planned.wait.reason if planned.wait else None) == reason


def test_a_waiting_alias_says_where_it_stays_and_why() -> None:
    wait = plan_alias(_seen("blue", NO_INDEX)).wait
    assert wait is not None and wait.stalled
    assert wait.message == (
        "target green is not ready (IndexNotFound: index not found[collection=green]); the alias stays on blue"
    )
    created = plan_alias(_seen(None, LOADING)).wait
    assert created is not None and not created.stalled and created.message.endswith("not created until then")


RELEASED = Previous("blue", SWITCHED.switched_at, NOW)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, AliasPlan(AliasAction.NONE, previous=SWITCHED)),  # no releasePrevious: never released
        ({"release_after": 3}, AliasPlan(AliasAction.NONE, ("blue",), previous=RELEASED)),  # 5 s since the switch
        ({"release_after": 30}, AliasPlan(AliasAction.NONE, recheck_in=25.0, previous=SWITCHED)),  # window not over
        ({"release_after": 5}, AliasPlan(AliasAction.NONE, ("blue",), previous=RELEASED)),  # exactly at its end
        (
            {"release_after": 3, "holders": {"blue": ("team/blue",)}},
            AliasPlan(AliasAction.NONE, previous=replace(SWITCHED, kept="not released: still wanted by team/blue")),
        ),
        ({"release_after": 3, "loaded": {"blue": False}}, AliasPlan(AliasAction.NONE, previous=RELEASED)),  # drained
        ({"release_after": 3, "previous": RELEASED}, AliasPlan(AliasAction.NONE, previous=RELEASED)),  # done already
        (
            {"release_after": 3, "previous": Previous("green", SWITCHED.switched_at)},
            AliasPlan(AliasAction.NONE, previous=Previous("green", SWITCHED.switched_at)),  # switched back
        ),
    ],
)
def test_releases_the_previous_target_after_the_drain_window(kwargs: dict[str, Any], expected: AliasPlan) -> None:
    assert plan_alias(_seen("green", **{"previous": SWITCHED, **kwargs})) == expected


def test_a_switch_keeps_every_previous_target_still_draining_newest_first() -> None:
    """blue left 5 s ago, red before: switching on to green keeps both to release; none when never released."""
    red = Previous("red", NOW - timedelta(seconds=9))
    planned = plan_alias(_seen("blue", target="white", previous=SWITCHED, draining=(red,), release_after=10))
    assert planned.action == AliasAction.ALTER and planned.previous == Previous("blue", NOW)
    assert planned.draining == (red,)  # blue is status.previous now, not twice
    switched = plan_alias(_seen("white", target="blue", previous=SWITCHED, draining=(red,), release_after=10))
    assert switched.previous == Previous("white", NOW) and switched.draining == (red,)  # back to blue: it serves
    assert plan_alias(_seen("blue", target="white", previous=SWITCHED, draining=(red,))).draining == ()
    many = tuple(Previous(f"c{i}", NOW) for i in range(MAX_DRAINING + 3))
    assert len(plan_alias(_seen("blue", target="white", draining=many, release_after=1)).draining) == MAX_DRAINING


def test_each_draining_target_is_released_after_its_own_window_unless_wanted() -> None:
    red, white = Previous("red", NOW - timedelta(seconds=12)), Previous("white", NOW - timedelta(seconds=11))
    seen = _seen("green", previous=SWITCHED, draining=(white, red), release_after=10, holders={"white": ("alias x",)})
    planned = plan_alias(seen)
    assert planned.releases == ("red",) and planned.recheck_in == 5.0  # blue's window ends in 5 s
    assert planned.draining == (replace(white, kept="not released: still wanted by alias x"),)
    assert plan_alias(replace(seen, holders={}, loaded={"white": False})).draining == ()  # released by someone else


def test_a_pending_switch_comes_before_any_release() -> None:
    """The alias moved away again (edited by hand): switching back first, the release waits for a later pass."""
    planned = plan_alias(_seen("red", previous=SWITCHED, release_after=0))
    assert planned == AliasPlan(
        AliasAction.ALTER, recheck_in=0.0, previous=Previous("red", NOW), draining=(SWITCHED,)
    )  # the next pass, at the end of the drain window


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
