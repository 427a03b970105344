"""What one pass of a collection's loop hands to the next, and when the next one runs: pure.

A pass either observes in full (and may plan and act) or re-checks only what was Loading (and may
only report progress). Every action is planned from a full observation taken after the last action.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .failures import Failure
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
class PassState:
    """What the loop remembers between passes; a new daemon starts from `PassState()`."""

    failures: int = 0  # failed passes in a row; only a pass without failure resets it
    rechecks: int = 0  # quick passes in a row while something loads or was just acted on
    observed: Observed | None = None  # the picture a re-check narrows down (never planned from)


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
) -> Step:
    """`draw` is uniform in [0, 1): the jitter that keeps many resources from retrying in lockstep."""
    if failure is not None:
        failures = state.failures + 1
        # a stalled reason needs a human or an infrastructure change: look again once per resync
        delay = timing.resync_seconds if failure.stalled else backoff(failures, timing, draw)
        return Step(PassState(failures=failures), delay, Mode.FULL)
    if acted:
        # the picture predates the calls just made: the next pass observes in full before anything else
        rechecks = state.rechecks + 1
        return Step(PassState(rechecks=rechecks), quick(rechecks, timing), Mode.FULL)
    if observed is not None and observed.loading:
        rechecks = state.rechecks + 1
        return Step(PassState(rechecks=rechecks, observed=observed), quick(rechecks, timing), Mode.RECHECK)
    return Step(PassState(), timing.resync_seconds, Mode.FULL)


def quick(rechecks: int, timing: Timing) -> float:
    """Short loads are seen finished soon (0.5, 0.5, 1, 1, 2 s ...); long ones every loading_recheck."""
    return float(min(timing.loading_recheck_seconds, timing.first_recheck_seconds * 2 ** ((rechecks - 1) // 2)))


def backoff(failures: int, timing: Timing, draw: float) -> float:
    """Doubling from loading_recheck, capped at the resync interval; "equal jitter": half fixed, half random."""
    ceiling = float(min(timing.resync_seconds, timing.loading_recheck_seconds * 2 ** (failures - 1)))
    return ceiling / 2 + ceiling / 2 * draw
