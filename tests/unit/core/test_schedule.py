"""Load windows: which window is open at a moment and when that changes, across DST in two zones."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from milvusops.core.failures import Reason
from milvusops.core.model import CollectionSpec, Desired, PartitionSpec, Schedule, Window
from milvusops.core.schedule import ScheduleError, WindowState, active, during, scheduled, state_at, timed, wake_in

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def windows(*items: tuple[str, int, str]) -> Schedule:
    return Schedule(windows=tuple(Window(start=s, duration_seconds=d, time_zone=z) for s, d, z in items))


SPRING_BERLIN = windows(("30 2 * * *", 3600, "Europe/Berlin"))  # 2026-03-29: 02:00 CET -> 03:00 CEST
SPRING_NEW_YORK = windows(("30 2 * * *", 3600, "America/New_York"))  # 2026-03-08: 02:00 EST -> 03:00 EDT
FALL_BERLIN = windows(("30 1 * * *", 7200, "Europe/Berlin"))  # 2026-10-25: 03:00 CEST -> 02:00 CET
FALL_NEW_YORK = windows(("30 1 * * *", 3600, "America/New_York"))  # 2026-11-01: 02:00 EDT -> 01:00 EST
HOURLY_NEW_YORK = windows(("45 * * * *", 600, "America/New_York"))  # 10 min from every hh:45
OVERLAPPING = windows(("0 9 * * *", 3 * 3600, "UTC"), ("0 11 * * *", 3 * 3600, "UTC"))
LONGER_THAN_PERIOD = windows(("0 9,10 * * *", 90 * 60, "UTC"))  # two starts an hour apart, 90 min each
NEVER_CLOSES = windows(("0 * * * *", 2 * 3600, "UTC"))  # hourly, two hours long


@pytest.mark.parametrize(
    ("schedule", "now", "expected"),
    [
        # spring forward: 02:30 does not exist that day; the window opens when the clock resumes at 03:00 CEST
        (SPRING_BERLIN, at(BERLIN, 2026, 3, 29, 1, 59), WindowState(None, utc(2026, 3, 29, 1, 0))),
        (SPRING_BERLIN, at(BERLIN, 2026, 3, 29, 3, 0), WindowState(0, utc(2026, 3, 29, 2, 0))),
        (SPRING_BERLIN, at(BERLIN, 2026, 3, 29, 3, 59), WindowState(0, utc(2026, 3, 29, 2, 0))),
        # the next day 02:30 exists again (CEST, UTC+2)
        (SPRING_BERLIN, at(BERLIN, 2026, 3, 29, 4, 0), WindowState(None, utc(2026, 3, 30, 0, 30))),
        (SPRING_NEW_YORK, at(NEW_YORK, 2026, 3, 8, 1, 59), WindowState(None, utc(2026, 3, 8, 7, 0))),
        (SPRING_NEW_YORK, at(NEW_YORK, 2026, 3, 8, 3, 30), WindowState(0, utc(2026, 3, 8, 8, 0))),
        (SPRING_NEW_YORK, at(NEW_YORK, 2026, 3, 8, 4, 0), WindowState(None, utc(2026, 3, 9, 6, 30))),
        # fall back: a 2 h window from 01:30 CEST spans the repeated hour and ends 2 real hours later, 02:30 CET
        (FALL_BERLIN, at(BERLIN, 2026, 10, 25, 1, 0), WindowState(None, utc(2026, 10, 24, 23, 30))),
        (FALL_BERLIN, at(BERLIN, 2026, 10, 25, 2, 15), WindowState(0, utc(2026, 10, 25, 1, 30))),
        (FALL_BERLIN, at(BERLIN, 2026, 10, 25, 2, 15, fold=1), WindowState(0, utc(2026, 10, 25, 1, 30))),
        (FALL_BERLIN, at(BERLIN, 2026, 10, 25, 2, 30, fold=1), WindowState(None, utc(2026, 10, 26, 0, 30))),
        # 01:30 happens twice in New York that night: the window opens once (the first), 1 real hour long
        (FALL_NEW_YORK, at(NEW_YORK, 2026, 11, 1, 1, 45), WindowState(0, utc(2026, 11, 1, 6, 30))),
        (FALL_NEW_YORK, at(NEW_YORK, 2026, 11, 1, 1, 45, fold=1), WindowState(None, utc(2026, 11, 2, 6, 30))),
        # 01:10 EST is 40 real minutes after the night's one 01:30 (EDT): still open; the wall clock, which reads
        # 01:10 < 01:30, must not hide that start (nor offer it as a transition still ahead)
        (FALL_NEW_YORK, at(NEW_YORK, 2026, 11, 1, 1, 10, fold=1), WindowState(0, utc(2026, 11, 1, 6, 30))),
        # an hourly start fires in both 01:xx hours of the fall-back night: the second 01:50 is inside the second
        (HOURLY_NEW_YORK, at(NEW_YORK, 2026, 11, 1, 1, 50, fold=1), WindowState(0, utc(2026, 11, 1, 6, 55))),
        (HOURLY_NEW_YORK, at(NEW_YORK, 2026, 11, 1, 1, 50), WindowState(0, utc(2026, 11, 1, 5, 55))),
        # overlapping windows: the first open one (in spec order) is the active one; a hand-over is a transition
        (OVERLAPPING, utc(2026, 5, 4, 8, 0), WindowState(None, utc(2026, 5, 4, 9, 0))),
        (OVERLAPPING, utc(2026, 5, 4, 10, 0), WindowState(0, utc(2026, 5, 4, 12, 0))),
        (OVERLAPPING, utc(2026, 5, 4, 12, 30), WindowState(1, utc(2026, 5, 4, 14, 0))),
        # occurrences that overlap make one run: open from 09:00 to 11:30, no transition at 10:00 or 10:30
        (LONGER_THAN_PERIOD, utc(2026, 5, 4, 9, 30), WindowState(0, utc(2026, 5, 4, 11, 30))),
        (LONGER_THAN_PERIOD, utc(2026, 5, 4, 10, 45), WindowState(0, utc(2026, 5, 4, 11, 30))),
        (LONGER_THAN_PERIOD, utc(2026, 5, 4, 11, 30), WindowState(None, utc(2026, 5, 5, 9, 0))),
        # a window longer than its period never closes: open, and no transition to wake for
        (NEVER_CLOSES, utc(2026, 5, 4, 10, 17), WindowState(0, None)),
    ],
)
def test_window_state(schedule: Schedule, now: datetime, expected: WindowState) -> None:
    assert state_at(schedule, now) == expected


def test_a_window_opens_at_its_start_and_closes_at_its_end_exactly() -> None:
    schedule = windows(("0 9 * * *", 60, "UTC"))
    assert state_at(schedule, utc(2026, 5, 4, 9, 0)).active == 0
    assert state_at(schedule, utc(2026, 5, 4, 9, 0, 59)).active == 0
    assert state_at(schedule, utc(2026, 5, 4, 9, 1)).active is None  # [start, start + duration)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (("0 9 * * *", 60, "Europe/Berln"), "spec.schedule.windows[1].timeZone: unknown time zone 'Europe/Berln'"),
        (("0 9 31 2 *", 60, "UTC"), "spec.schedule.windows[1].start: '0 9 31 2 *': Bad day-of-month"),
        (("61 9 * * *", 60, "UTC"), "spec.schedule.windows[1].start: '61 9 * * *': Bad minute"),
        (("0 0 9 * * *", 60, "UTC"), "spec.schedule.windows[1].start: '0 0 9 * * *' is not a 5-field cron"),
    ],
)
def test_what_the_api_server_cannot_check_is_an_error_naming_the_window(
    window: tuple[str, int, str], message: str
) -> None:
    with pytest.raises(ScheduleError, match="^" + re.escape(message)):
        state_at(windows(("0 8 * * *", 60, "UTC"), window), utc(2026, 5, 4))


SPEC = CollectionSpec(
    collection_name="c",
    state=Desired.LOADED,
    partitions=(PartitionSpec(name="a", state=Desired.LOADED), PartitionSpec(name="b", state=Desired.RELEASED)),
    schedule=windows(("0 9 * * *", 3600, "UTC")),
)


def test_outside_every_window_loaded_states_become_released() -> None:
    spec, state = scheduled(SPEC, utc(2026, 5, 4, 8, 0))
    assert state == WindowState(None, utc(2026, 5, 4, 9, 0))
    assert spec.state == Desired.RELEASED
    assert [(p.name, p.state) for p in spec.partitions] == [("a", Desired.RELEASED), ("b", Desired.RELEASED)]
    assert spec.desired_for("a") == Desired.RELEASED  # the look-up follows the new partitions


def test_inside_a_window_the_spec_holds_as_written() -> None:
    spec, state = scheduled(SPEC, utc(2026, 5, 4, 9, 30))
    assert state == WindowState(0, utc(2026, 5, 4, 10, 0))
    assert spec == SPEC


def test_without_a_schedule_nothing_changes() -> None:
    plain = SPEC.model_copy(update={"schedule": None})
    assert scheduled(plain, utc(2026, 5, 4, 8, 0)) == (plain, None)


def test_a_spec_that_leaves_partitions_alone_still_leaves_them_alone_outside() -> None:
    alone = SPEC.model_copy(update={"state": None})
    assert during(alone, WindowState(None, None)).state is None


@pytest.mark.parametrize(
    ("delay", "transition", "expected"),
    [
        (30.0, utc(2026, 5, 4, 9, 0, 10), 10.25),  # the transition comes first: just past it
        (30.0, utc(2026, 5, 4, 9, 1), 30.0),  # the resync comes first
        (30.0, utc(2026, 5, 4, 8, 59), 0.25),  # already past (a slow pass): at once
        (30.0, None, 30.0),
    ],
)
def test_the_loop_wakes_at_the_next_transition(delay: float, transition: datetime | None, expected: float) -> None:
    assert wake_in(delay, WindowState(0, transition), utc(2026, 5, 4, 9, 0)) == expected


def test_an_unknown_zone_is_the_passes_failure_and_the_spec_is_kept() -> None:
    bad = SPEC.model_copy(update={"schedule": windows(("0 9 * * *", 60, "Mars/Olympus"))})
    spec, state, failure = timed(bad, utc(2026, 5, 4, 8, 0))
    assert (spec, state) == (bad, None)
    assert failure is not None and failure.reason == Reason.INVALID_SCHEDULE and failure.stalled
    assert failure.message.startswith("spec.schedule.windows[0].timeZone: unknown time zone 'Mars/Olympus'")


@pytest.mark.parametrize(
    ("schedule", "day"),
    [
        (SPRING_BERLIN, utc(2026, 3, 28, 12)),
        (FALL_BERLIN, utc(2026, 10, 24, 12)),
        (FALL_NEW_YORK, utc(2026, 10, 31, 18)),
        (HOURLY_NEW_YORK, utc(2026, 10, 31, 18)),
        (windows(("*/20 1-3 * * *", 1500, "America/New_York"), ("30 2 * * *", 5400, "Europe/Berlin")), utc(2026, 3, 7)),
    ],
)
def test_the_next_transition_is_ahead_and_nothing_changes_before_it(schedule: Schedule, day: datetime) -> None:
    """Across two days around a DST change, every 20 minutes: the state holds until the transition, which changes it."""
    for step in range(0, 2 * 24 * 60, 20):
        now = day + timedelta(minutes=step)
        state = state_at(schedule, now)
        assert state.next_transition is not None and state.next_transition > now, now
        gap = state.next_transition - now
        for part in (0.25, 0.5, 0.99):
            assert active(schedule.windows, now + gap * part) == state.active, (now, part)
        assert active(schedule.windows, state.next_transition) != state.active, now


def test_an_earlier_state_is_reused_until_its_transition_and_only_for_its_schedule() -> None:
    known = state_at(SPEC.schedule or windows(), utc(2026, 5, 4, 8, 0))  # closed until 09:00
    assert known.since == utc(2026, 5, 4, 8, 0) and known.schedule == SPEC.schedule
    reused = WindowState(None, utc(2026, 5, 4, 9, 0), SPEC.schedule, utc(2026, 5, 4, 8, 0))
    assert scheduled(SPEC, utc(2026, 5, 4, 8, 59), reused)[1] is reused
    assert scheduled(SPEC, utc(2026, 5, 4, 9, 0), reused)[1] == WindowState(0, utc(2026, 5, 4, 10, 0))  # at it
    assert scheduled(SPEC, utc(2026, 5, 4, 7, 59), reused)[1] is not reused  # before it was computed
    other = SPEC.model_copy(update={"schedule": windows(("0 8 * * *", 7200, "UTC"))})
    assert scheduled(other, utc(2026, 5, 4, 8, 30), reused)[1] == WindowState(0, utc(2026, 5, 4, 10, 0))
