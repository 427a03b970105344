"""Pure: load windows (a cron start, a duration, an IANA time zone) -> which window is open at a moment,
when that changes next, and the spec as it holds then. The moment is always an argument, never the clock.

Cron times follow Debian cron across daylight-saving changes (cronsim): a start at a fixed time inside the
skipped spring-forward hour fires when the hour resumes (02:30 -> 03:00), a fixed start inside the repeated
fall-back hour fires once (its first occurrence). A duration is elapsed time: 2 h is 2 real hours, whatever
the wall clock does meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from milvusops.core.failures import Failure, Reason
from milvusops.core.model import CollectionSpec, Desired, Schedule, Window

# starts and ends looked through for the next change: windows that overlap without a gap have none within it
HORIZON_STEPS = 256
WAKE_MARGIN_SECONDS = 0.25  # a pass woken for a transition runs just after it, never just before


class ScheduleError(ValueError):
    """A time zone or cron start the API server's schema cannot check (an unknown zone, day 31 of February)."""


@dataclass(frozen=True)
class WindowState:
    """The schedule at a moment: the open window (the first in spec order) and when that changes next."""

    active: int | None  # index in spec.schedule.windows; None: outside every window
    next_transition: datetime | None  # UTC; None: no change within HORIZON_STEPS starts and ends
    # what it was computed for and when: it holds for that schedule until next_transition (`holds`)
    schedule: Schedule | None = field(default=None, compare=False)
    since: datetime | None = field(default=None, compare=False)


def holds(state: WindowState | None, schedule: Schedule, now: datetime) -> bool:
    """The earlier `state` still answers for `schedule` at `now`: nothing changes before its next transition."""
    if state is None or state.since is None or state.next_transition is None:
        return False
    return state.schedule == schedule and state.since <= now < state.next_transition


def check(schedule: Schedule) -> None:
    """Raise ScheduleError naming the first window whose zone or cron expression cannot be used."""
    for index, window in enumerate(schedule.windows):
        where = f"spec.schedule.windows[{index}]"
        try:
            zone = _zone(window)
        except ScheduleError as exc:
            raise ScheduleError(f"{where}.timeZone: {exc}") from None
        if len(window.start.split()) != 5:
            raise ScheduleError(f"{where}.start: {window.start!r} is not a 5-field cron expression")
        try:
            CronSim(window.start, datetime(2000, 1, 1, tzinfo=zone))
        except CronSimError as exc:
            raise ScheduleError(f"{where}.start: {window.start!r}: {exc}") from None


def state_at(schedule: Schedule, now: datetime) -> WindowState:
    """Which window is open at `now` (an aware datetime), and when the open window (or none) changes next."""
    check(schedule)
    windows = schedule.windows
    current = active(windows, now)
    cursor = now
    for _ in range(HORIZON_STEPS):
        candidates = [moment for window in windows if (moment := _next_change(window, cursor)) is not None]
        if not candidates:
            break
        cursor = min(candidates)
        if active(windows, cursor) != current:
            return WindowState(current, cursor, schedule, now)
    return WindowState(current, None, schedule, now)


def active(windows: tuple[Window, ...], at: datetime) -> int | None:
    """The first window (in spec order) open at `at`; None outside every window."""
    return next((index for index, window in enumerate(windows) if opened_at(window, at) is not None), None)


def opened_at(window: Window, at: datetime) -> datetime | None:
    """The start (UTC) of the occurrence that holds `window` open at `at`; None when it is closed then.

    Occurrences last equally long, so the latest start decides: if it has ended, every earlier one has too.
    """
    start = last_start(window, at)
    if start is not None and at < start + timedelta(seconds=window.duration_seconds):
        return start
    return None


def last_start(window: Window, at: datetime) -> datetime | None:
    """The latest start at or before `at`, in UTC."""
    # cronsim's reverse iteration steps back one second before it matches: start a second later to include `at`;
    # added in UTC, since wall-clock arithmetic would drop `fold` (the second 01:50 of a fall-back night)
    after = (at.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)).astimezone(_zone(window))
    latest = next(_utc(CronSim(window.start, after, reverse=True)), None)
    if latest is None:
        return None
    # a fixed-time start goes back on the wall clock, which repeats after fall-back: at 01:00 EST it finds
    # yesterday's 01:30, not tonight's 01:30 EDT an hour ago; the forward starts from there say which came last
    for later in starts_after(window, latest):
        if later > at:
            break
        latest = later
    return latest


def starts_after(window: Window, at: datetime) -> Iterator[datetime]:
    """The starts strictly after `at`, in UTC."""
    # a fixed-time start iterates on the wall clock, which repeats after fall-back: 01:30 of 01:10 EST is behind
    return (start for start in _utc(CronSim(window.start, at.astimezone(_zone(window)))) if start > at)


def run_end(window: Window, at: datetime) -> datetime | None:
    """When the window, open at `at`, closes: occurrences that overlap or touch make one run.

    None when it has not closed within HORIZON_STEPS occurrences (a window as long as its period never does).
    """
    start = opened_at(window, at)
    if start is None:
        return at
    duration = timedelta(seconds=window.duration_seconds)
    end = start + duration
    for later in islice(starts_after(window, start), HORIZON_STEPS):
        if later > end:
            return end
        end = max(end, later + duration)
    return None


def _next_change(window: Window, at: datetime) -> datetime | None:
    """When this window alone opens or closes next after `at`."""
    if opened_at(window, at) is not None:
        return run_end(window, at)
    return next(starts_after(window, at), None)


def _utc(moments: Iterator[datetime]) -> Iterator[datetime]:
    return (moment.astimezone(UTC) for moment in moments)  # ends where cronsim gives up: 50 years without a match


def _zone(window: Window) -> ZoneInfo:
    try:
        return ZoneInfo(window.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {window.time_zone!r} (an IANA name, e.g. Europe/Berlin)") from None


def during(spec: CollectionSpec, state: WindowState | None) -> CollectionSpec:
    """The spec as it holds at the moment of `state`: outside every window, its Loaded states become
    spec.schedule.outsideWindows; inside a window, or without a schedule, the spec as written."""
    if spec.schedule is None or state is None or state.active is not None:
        return spec
    outside = Desired(spec.schedule.outside_windows.value)
    partitions = tuple(
        p.model_copy(update={"state": outside}) if p.state == Desired.LOADED else p for p in spec.partitions
    )
    state_now = outside if spec.state == Desired.LOADED else spec.state
    return spec.model_copy(update={"state": state_now, "partitions": partitions})


def scheduled(
    spec: CollectionSpec, now: datetime, known: WindowState | None = None
) -> tuple[CollectionSpec, WindowState | None]:
    """The spec at `now` and the schedule's state then (None without a schedule); raises ScheduleError.

    `known`: the previous pass's state, reused while it `holds` (the cron search costs a few milliseconds).
    """
    if spec.schedule is None:
        return spec, None
    state = known if known is not None and holds(known, spec.schedule, now) else state_at(spec.schedule, now)
    return during(spec, state), state


def timed(
    spec: CollectionSpec, now: datetime, known: WindowState | None = None
) -> tuple[CollectionSpec, WindowState | None, Failure | None]:
    """`scheduled`, with what the API server could not check as the pass's failure (no Milvus call follows)."""
    try:
        spec_now, state = scheduled(spec, now, known)
    except ScheduleError as exc:
        return (
            spec,
            None,
            Failure(Reason.INVALID_SCHEDULE, f"{exc}; no Milvus call is made until spec.schedule is fixed"),
        )
    return spec_now, state, None


def wake_in(delay: float, state: WindowState | None, now: datetime) -> float:
    """The loop's sleep: `delay`, or until just past the next transition when that comes first."""
    if state is None or state.next_transition is None:
        return delay
    until = (state.next_transition - now).total_seconds()
    return min(delay, max(0.0, until) + WAKE_MARGIN_SECONDS)
