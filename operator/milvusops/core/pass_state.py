"""What one pass of a collection's loop hands to the next, and when the next one runs: pure.

A pass either observes in full (and may plan and act), re-checks only what was Loading (and may
only report progress), or confirms that an in-sync picture still holds (and observes in full when it
does not). Every action is planned from a full observation taken after the last action.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from milvusops.core.failures import Failure, Reason
from milvusops.core.loadtimes import Expected
from milvusops.core.model import LoadState
from milvusops.core.observed import Observed


class Mode(StrEnum):
    FULL = "full"  # observe every partition; may plan and act
    RECHECK = "recheck"  # ask only about what was Loading; reports progress, never acts
    CONFIRM = "confirm"  # ask only whether an in-sync picture still holds; observe in full if it does not


class PassKind(StrEnum):
    FIRST = "first"  # the daemon's first pass, or one woken by a change: observe in full; its reads go first
    FULL = "full"  # a timer pass that observes in full
    RECHECK = "recheck"  # ask only about what was Loading in the picture; reports progress, never acts
    CONFIRM = "confirm"  # ask only whether the in-sync picture still holds; observe in full if it does not


@dataclass(frozen=True)
class Pass:
    """What kind of pass this is and from which earlier picture; `reconcile` takes it, `this_pass` builds it."""

    kind: PassKind = PassKind.FIRST
    picture: Observed | None = (
        None  # RECHECK: the picture whose Loading parts are asked about; CONFIRM: the in-sync one
    )
    settled: bool = False  # the pass before found nothing to do: this one's reads wait behind other resources'

    def __post_init__(self) -> None:
        narrowed = self.kind in (PassKind.RECHECK, PassKind.CONFIRM)
        if narrowed != (self.picture is not None):
            raise ValueError(f"a {self.kind} pass {'needs' if narrowed else 'takes no'} earlier picture")

    @property
    def mode(self) -> Mode:
        return Mode.FULL if self.kind in (PassKind.FIRST, PassKind.FULL) else Mode(self.kind.value)

    @property
    def urgent(self) -> bool:
        return self.kind == PassKind.FIRST


FIRST_PASS = Pass()


def this_pass(mode: Mode, picture: Observed | None, *, woken: bool, settled: bool) -> Pass:
    """The pass `next_pass` scheduled (`mode`, from its `picture`), unless a change of the resource woke the loop.

    `settled`: the pass before found nothing to do (`steady`). A change always gets a first pass, in full.
    """
    if woken:
        return Pass()
    if mode == Mode.FULL or picture is None:  # nothing to narrow down to: observe in full
        return Pass(PassKind.FULL, settled=settled)
    return Pass(PassKind(mode.value), picture, settled)


# a pass that ends with one of these, without failure or action, hands the next one a picture to confirm
STEADY_REASONS = frozenset({Reason.IN_SYNC, Reason.OBSERVING})


def steady(reason: Reason, failure: Failure | None, acted: bool) -> bool:
    """The pass found nothing to do: in sync, or an observer (it never acts) with nothing failing."""
    return failure is None and not acted and reason in STEADY_REASONS


@dataclass(frozen=True)
class Timing:
    resync_seconds: float
    loading_recheck_seconds: float
    first_recheck_seconds: float = 0.5
    full_observation_seconds: float = 300.0  # in sync, a pass at least this often lists partitions and ids again
    calls_per_second: float = 0.0  # a connection's steady-state call budget; full observations use what is left


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
    observed: Observed | None = None  # the picture a re-check narrows down or a confirmation checks
    full_at: float | None = None  # when the picture confirmed or re-checked was observed in full (monotonic seconds)
    first: Sample | None = None  # the start of the current load (0 % when we sent it): the rate is measured from it
    last: Sample | None = None  # the previous re-check's progress: a load that stopped moving gets only the ladder


@dataclass(frozen=True)
class Step:
    state: PassState
    delay: float  # seconds until the next pass, unless the object changes first
    mode: Mode  # of the next pass, unless the object changes first (then it is FULL)
    loaded_in: float | None = None  # a load watched since it began was seen done: about how long it took


def next_pass(
    state: PassState,
    *,
    observed: Observed | None,
    acted: bool,
    failure: Failure | None,
    timing: Timing,
    draw: float,
    now: float = 0.0,
    expected: Expected | None = None,
    settled: bool = False,
    started: Observed | None = None,
    resources: int | None = None,
) -> Step:
    """`draw` is uniform in [0, 1): the jitter that keeps many resources from retrying in lockstep.

    `now` (monotonic seconds) dates the progress Milvus reports, and `expected` is how long loads on
    this connection took lately (`LoadTimes`), so a load is looked at again when it should end, not
    only at the next step of the ladder. `settled`: the pass found everything as the spec wants, so
    the next one only confirms it, until `full_observation_seconds` after the last full observation.
    `started`: the pass only started loads, and this is the picture they should leave (`plan.started`).
    `resources`: how many resources share this one's connection; the full observations' interval then
    follows the connection's call budget (`full_every`), else it is `full_observation_seconds`.
    """
    if failure is not None:
        failures = state.failures + 1
        # a stalled reason needs a human or an infrastructure change: look again once per resync
        delay = timing.resync_seconds if failure.stalled else backoff(failures, timing, draw)
        # calls went through before the failure: judged afresh soon (a failed load's own retry keeps its resync pace)
        if acted and failure.reason != Reason.LOAD_FAILED:
            delay = min(delay, backoff(failures, timing, draw))
        return Step(PassState(failures=failures), delay, Mode.FULL)
    if acted:
        rechecks, began = state.rechecks + 1, Sample(now, 0)
        if started is not None:  # only loads were started: ask about them, as while loading; plan nothing
            full_at = state.full_at if observed is not None and observed.confirmed else now
            after = PassState(rechecks=rechecks, observed=started, full_at=full_at, first=began)
            return Step(after, quick(rechecks, timing), Mode.RECHECK)
        # the picture predates the calls just made: the next pass observes in full before anything else
        return Step(PassState(rechecks=rechecks, first=began), quick(rechecks, timing), Mode.FULL)
    if observed is not None and observed.loading:
        rechecks = state.rechecks + 1
        percent = slowest(observed)
        sample = Sample(now, percent) if percent is not None else None
        first = state.first or sample
        moving = state.last is None or (percent is not None and percent > state.last.percent)
        ladder = quick(rechecks, timing)
        delay = until_done(ladder, first, percent, now) if moving else ladder
        delay = min(delay, near_end(first, now, expected))
        last = sample or Sample(now, 0)
        full_at = state.full_at if observed.partial else now
        after = PassState(rechecks=rechecks, observed=observed, full_at=full_at, first=first, last=last)
        return Step(after, delay, Mode.RECHECK)
    loaded_in = _loaded_in(state, observed, now)
    if not settled or observed is None or observed.partial:
        return Step(PassState(), timing.resync_seconds, Mode.FULL, loaded_in=loaded_in)
    full_at = state.full_at if observed.confirmed and state.full_at is not None else now
    every = timing.full_observation_seconds if resources is None else full_every(resources, timing, *calls(observed))
    due = now + timing.resync_seconds - full_at >= every
    mode = Mode.FULL if due else Mode.CONFIRM
    return Step(PassState(observed=observed, full_at=full_at), timing.resync_seconds, mode, loaded_in=loaded_in)


def full_every(resources: int, timing: Timing, full_calls: int, confirm_calls: int) -> float:
    """Seconds between full observations of each of `resources` sharing a connection.

    Confirmations take their share of the connection's budget (`calls_per_second` per resync) first; full
    observations, each `full_calls - confirm_calls` calls more, share what is left: every resync at best,
    `full_observation_seconds` at worst (the ceiling that keeps 10,000 resources near one call per partition).
    """
    ceiling = timing.full_observation_seconds
    spare = timing.calls_per_second * timing.resync_seconds - resources * confirm_calls
    if spare <= 0:
        return ceiling
    extra = resources * max(1, full_calls - confirm_calls)
    return min(ceiling, max(timing.resync_seconds, timing.resync_seconds * extra / spare))


def calls(observed: Observed) -> tuple[int, int]:
    """Milvus calls of a full observation of this picture and of its confirmation (`observe`, `confirm`)."""
    if not observed.exists:
        return 1, 1
    states = [report.state for report in observed.partitions.values()]
    if LoadState.LOADED not in states:
        return 3, 1  # get_load_state, list_partitions, describe; a confirmation asks the collection alone
    # get_load_state of the collection and each partition, list_partitions, describe, describe_replica
    full = len(states) + 4
    # loaded ones together, each released one; the replicas only after the server's query nodes changed
    return full, 1 + states.count(LoadState.NOT_LOAD)


def _loaded_in(state: PassState, observed: Observed | None, now: float) -> float | None:
    """A load watched from its call to its end: done between the last re-check and now, so the midpoint."""
    if observed is None or state.observed is None or state.first is None or state.first.percent != 0:
        return None
    seen = state.last.at if state.last is not None else now
    return max(0.0, (seen + now) / 2 - state.first.at)


def near_end(first: Sample | None, now: float, expected: Expected | None) -> float:
    """Until just before an expected end of a load that started at `first`, fine looks across it, then wider ones.

    The ends are the typical load time and, when recent loads came at two speeds, the longest one.
    """
    if expected is None or first is None:
        return float("inf")
    elapsed = now - first.at
    ends: tuple[float, ...] = (expected.typical,)
    if expected.longest > (1 + FINE) * expected.typical:  # beyond the first end's fine looks: aim at it as well
        ends = (expected.typical, expected.longest)
    for end in ends:
        opens, closes = (1 - EARLY) * end, (1 + FINE) * end
        if elapsed < opens:
            return max(FINEST, opens - elapsed)
        if elapsed < closes:
            return max(FINEST, (closes - opens) / FINE_LOOKS)  # a few looks, however long the load
    if elapsed < LATE * ends[-1]:
        return max(FINEST, STEP * ends[-1])  # a few looks past the last expected end, each a tenth of it apart
    return float("inf")  # much later than loads take here: the ladder alone


FINEST = 0.1  # seconds: the shortest re-check, near a load's predicted end
MARGIN = 0.05  # seconds after the predicted end: Milvus reports 100 % a moment after the last segment loads
# fine looks from 5 % before to 10 % after an expected duration (loads here vary by a few %), four in all
EARLY, FINE, FINE_LOOKS = 0.05, 0.10, 4
LATE, STEP = 1.4, 0.1  # then a tenth of the last expected duration apart until 1.4 times it


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
