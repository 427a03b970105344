"""What one pass of a collection's loop hands to the next, and when the next one runs: pure.

A pass either observes in full (and may plan and act) or re-checks only what was Loading (and may
only report progress). Every action is planned from a full observation taken after the last action.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .failures import Failure
from .model import LoadState
from .observe import Observed


class Mode(StrEnum):
    FULL = "full"  # observe every partition; may plan and act
    RECHECK = "recheck"  # ask only about what was Loading; reports progress, never acts


@dataclass(frozen=True)
class Timing:
    resync_seconds: float
    loading_recheck_seconds: float
    first_recheck_seconds: float = 0.5


@dataclass(frozen=True)
class Sample:
    """Loading progress (percent) as Milvus reported it at a moment (monotonic seconds)."""

    at: float
    percent: int


@dataclass(frozen=True)
class PassState:
    """What the loop remembers between passes; a new daemon starts from `PassState()`."""

    failures: int = 0  # failed passes in a row; only a pass without failure resets it
    rechecks: int = 0  # quick passes in a row while something loads or was just acted on
    observed: Observed | None = None  # the picture a re-check narrows down (never planned from)
    first: Sample | None = None  # the start of the current load (0 % when we sent it): the rate is measured from it
    last: Sample | None = None  # the previous re-check's progress: a load that stopped moving gets only the ladder


@dataclass(frozen=True)
class Step:
    state: PassState
    delay: float  # seconds until the next pass, unless the object changes first
    mode: Mode  # of the next pass, unless the object changes first (then it is FULL)


def next_pass(
    state: PassState,
    *,
    observed: Observed | None,
    acted: bool,
    failure: Failure | None,
    timing: Timing,
    draw: float,
    now: float = 0.0,
) -> Step:
    """`draw` is uniform in [0, 1): the jitter that keeps many resources from retrying in lockstep.

    `now` (monotonic seconds) dates the progress Milvus reports, so a load is looked at again when it
    should end, not only at the next step of the ladder.
    """
    if failure is not None:
        failures = state.failures + 1
        # a stalled reason needs a human or an infrastructure change: look again once per resync
        delay = timing.resync_seconds if failure.stalled else backoff(failures, timing, draw)
        return Step(PassState(failures=failures), delay, Mode.FULL)
    if acted:
        # the picture predates the calls just made: the next pass observes in full before anything else
        rechecks = state.rechecks + 1
        return Step(PassState(rechecks=rechecks, first=Sample(now, 0)), quick(rechecks, timing), Mode.FULL)
    if observed is not None and observed.loading:
        rechecks = state.rechecks + 1
        percent = slowest(observed)
        sample = Sample(now, percent) if percent is not None else None
        first = state.first or sample
        moving = state.last is None or (percent is not None and percent > state.last.percent)
        ladder = quick(rechecks, timing)
        delay = until_done(ladder, first, percent, now) if moving else ladder
        return Step(PassState(rechecks=rechecks, observed=observed, first=first, last=sample), delay, Mode.RECHECK)
    return Step(PassState(), timing.resync_seconds, Mode.FULL)


FINEST = 0.1  # seconds: the shortest re-check, near a load's predicted end
MARGIN = 0.05  # seconds after the predicted end: Milvus reports 100 % a moment after the last segment loads


def slowest(observed: Observed) -> int | None:
    """The lowest progress among what is Loading (it decides when all is done); None if Milvus gave none."""
    reports = (observed.collection, *observed.partitions.values())
    known = [r.progress for r in reports if r.state == LoadState.LOADING and r.progress is not None]
    return min(known) if known else None


def until_done(ladder: float, first: Sample | None, percent: int | None, now: float) -> float:
    """The ladder's delay, shortened to the end that the progress rate since `first` predicts."""
    if first is None or percent is None or percent <= first.percent or now <= first.at:
        return ladder  # no rate yet: Milvus gave no progress, or none since the load began
    rate = (percent - first.percent) / (now - first.at)
    remaining = (100 - percent) / rate
    return max(FINEST, min(ladder, remaining + MARGIN))


def quick(rechecks: int, timing: Timing) -> float:
    """Short loads are seen finished soon (0.5, 0.5, 1, 1, 2 s ...); long ones every loading_recheck."""
    return float(min(timing.loading_recheck_seconds, timing.first_recheck_seconds * 2 ** ((rechecks - 1) // 2)))


def backoff(failures: int, timing: Timing, draw: float) -> float:
    """Doubling from loading_recheck, capped at the resync interval; "equal jitter": half fixed, half random."""
    ceiling = float(min(timing.resync_seconds, timing.loading_recheck_seconds * 2 ** (failures - 1)))
    return ceiling / 2 + ceiling / 2 * draw
