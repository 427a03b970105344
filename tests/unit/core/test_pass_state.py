"""next_pass: what one pass hands to the next, and when the next one runs (table tests)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from milvusops.core.failures import Failure, Reason
from milvusops.core.loadtimes import Expected, LoadTimes
from milvusops.core.model import LoadState
from milvusops.core.observed import Observed, StateReport
from milvusops.core.pass_state import (
    FINEST,
    FIRST_PASS,
    MARGIN,
    Mode,
    Pass,
    PassKind,
    PassState,
    Sample,
    Step,
    Timing,
    backoff,
    calls,
    full_every,
    next_pass,
    this_pass,
)
from milvusops.core.plan import LoadCollection, ReleaseCollection, started
from milvusops.core.status import Verdict
from milvusops.milvus.call_slots import Priority, for_pass
from milvusops.runtime.collection_worker import carried
from milvusops.runtime.reconcile import Result

TIMING = Timing(resync_seconds=30.0, loading_recheck_seconds=2.0)
LOADING = Observed(StateReport(LoadState.LOADED), {"a": StateReport(LoadState.LOADING, 50)})
SETTLED = Observed(StateReport(LoadState.LOADED), {"a": StateReport(LoadState.LOADED)})
FIRST_SEEN = Sample(0.0, 50)  # a load already under way, first seen at 50 % at now=0
JUST_SENT = PassState(rechecks=1, first=Sample(0.0, 0))  # a call sent at now=0: a load starts at 0 %
DOWN = Failure(Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus")
STALLED = Failure(Reason.INDEX_NOT_FOUND, "no index")


def step(state: PassState, observed: Observed | None = None, acted: bool = False, failure: Failure | None = None,
         draw: float = 0.5) -> Step:  # fmt: skip
    return next_pass(state, observed=observed, acted=acted, failure=failure, timing=TIMING, draw=draw)


@pytest.mark.parametrize(
    ("state", "observed", "acted", "failure", "expected"),
    [
        pytest.param(PassState(), SETTLED, False, None, Step(PassState(), 30.0, Mode.FULL), id="in-sync-resync"),
        pytest.param(
            PassState(),
            SETTLED,
            True,
            None,
            Step(JUST_SENT, 0.5, Mode.FULL),
            id="acted-full",
        ),
        pytest.param(
            PassState(),
            LOADING,
            True,
            None,
            Step(JUST_SENT, 0.5, Mode.FULL),
            id="acted-loading",
        ),
        pytest.param(
            PassState(rechecks=1),
            LOADING,
            False,
            None,
            Step(
                PassState(rechecks=2, observed=LOADING, full_at=0.0, first=Sample(0.0, 50), last=Sample(0.0, 50)),
                0.5,
                Mode.RECHECK,
            ),
            id="loading-rechecks",  # a load the operator did not start: its first sample dates the rate
        ),
        pytest.param(
            PassState(rechecks=4, observed=LOADING), SETTLED, False, None, Step(PassState(), 30.0, Mode.FULL), id="done"
        ),
        pytest.param(
            PassState(failures=3, rechecks=2),
            SETTLED,
            False,
            None,
            Step(PassState(), 30.0, Mode.FULL),
            id="success-resets",
        ),
        pytest.param(
            PassState(failures=2),
            None,
            False,
            STALLED,
            Step(PassState(failures=3), 30.0, Mode.FULL),
            id="stalled-resync",
        ),
        pytest.param(
            PassState(rechecks=3, observed=LOADING),
            None,
            False,
            DOWN,
            Step(PassState(failures=1), 1.5, Mode.FULL),
            id="failure-drops-the-picture",
        ),
    ],
)
def test_next_pass(
    state: PassState, observed: Observed | None, acted: bool, failure: Failure | None, expected: Step
) -> None:
    assert step(state, observed, acted, failure) == expected


@pytest.mark.parametrize(("rechecks", "delay"), [(1, 0.5), (2, 0.5), (3, 1.0), (4, 1.0), (5, 2.0), (10, 2.0)])
def test_loading_rechecks_start_fast_and_settle_at_the_loading_interval(rechecks: int, delay: float) -> None:
    assert step(PassState(rechecks=rechecks - 1), LOADING).delay == delay


@pytest.mark.parametrize(("failures", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (50, 30.0)])
def test_backoff_doubles_up_to_the_resync_interval_with_jitter_in_its_upper_half(failures: int, ceiling: float) -> None:
    assert backoff(failures, TIMING, 0.0) == ceiling / 2
    assert backoff(failures, TIMING, 0.999) == pytest.approx(ceiling, rel=1e-2)


def test_failures_keep_counting_until_a_success() -> None:
    state, delays = PassState(), list[float]()
    for _ in range(8):
        result = step(state, failure=DOWN, draw=1.0)
        state, delays = result.state, [*delays, result.delay]
    assert delays == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]  # no saw-tooth back to 2 s
    assert step(state, SETTLED).state == PassState()


def test_unknown_and_rate_limit_errors_back_off_too() -> None:
    rate_limited = Failure(Reason.MILVUS_ERROR, "code 8: rate limit exceeded")
    assert step(PassState(failures=5), failure=rate_limited).delay >= 15.0


def loading(percent: int | None) -> Observed:
    return Observed(StateReport(LoadState.LOADED), {"a": StateReport(LoadState.LOADING, percent)})


@pytest.mark.parametrize(
    ("first", "percent", "now", "rechecks", "delay"),
    [
        # sent at 10 s, 80 % at 12 s: 40 %/s, so 0.5 s left; the ladder would wait 2 s
        pytest.param(Sample(10.0, 0), 80, 12.0, 5, 0.5 + MARGIN, id="predicted-end-before-the-ladder"),
        pytest.param(Sample(10.0, 0), 20, 11.0, 5, 2.0, id="predicted-end-after-the-ladder"),
        pytest.param(Sample(10.0, 0), 99, 12.0, 5, FINEST, id="nearly-done-never-below-the-finest"),
        pytest.param(Sample(10.0, 0), None, 12.0, 5, 2.0, id="no-progress-reported"),
        pytest.param(Sample(10.0, 40), 40, 12.0, 5, 2.0, id="no-progress-since-the-first-sample"),
        pytest.param(None, 60, 12.0, 5, 2.0, id="first-sample-gives-no-rate"),
    ],
)
def test_a_load_is_looked_at_when_its_progress_says_it_ends(
    first: Sample | None, percent: int | None, now: float, rechecks: int, delay: float
) -> None:
    state = PassState(rechecks=rechecks - 1, first=first)
    result = next_pass(state, observed=loading(percent), acted=False, failure=None, timing=TIMING, draw=0.5, now=now)
    assert result.delay == pytest.approx(delay)
    assert result.state.first == (first or Sample(now, percent) if percent is not None else first)


def test_a_load_stuck_near_its_end_is_not_rechecked_every_tenth_of_a_second() -> None:
    """E.g. a query node lost mid-load: progress stops at 99 % and the predicted end keeps being 'now'."""
    state = PassState(rechecks=9, first=Sample(0.0, 0))
    delays = []
    for now in (30.0, 32.0, 34.0, 36.0):
        result = next_pass(state, observed=loading(99), acted=False, failure=None, timing=TIMING, draw=0.5, now=now)
        delays.append(result.delay)
        state = result.state
    assert delays[0] < 1.0  # the first look predicts the end (99 % of the way after 30 s)
    assert delays[1:] == [2.0, 2.0, 2.0]  # no movement since: the ladder, not a storm of calls


def watch(expected: Expected | None, done_at: float) -> tuple[list[float], float | None]:
    """A load sent at 0 s that Milvus reports Loading (0 %) until `done_at`: when is it looked at?"""
    state = next_pass(PassState(), observed=None, acted=True, failure=None, timing=TIMING, draw=0.5, now=0.0).state
    now, seen = 0.5, []  # the full pass after the call
    while True:
        seen.append(now)
        observed = loading(0) if now < done_at else SETTLED
        result = next_pass(
            state, observed=observed, acted=False, failure=None, timing=TIMING, draw=0.5, now=now, expected=expected
        )
        if not observed.loading:
            return seen, result.loaded_in
        state, now = result.state, round(now + result.delay, 3)


def test_without_history_the_ladder_sees_a_load_late() -> None:
    seen, took = watch(None, done_at=2.4)
    assert seen == [0.5, 1.0, 2.0, 3.0]  # 0.5 after the call, then the ladder's 0.5, 1, 1
    assert took == pytest.approx(2.5)  # the midpoint of 2.0 and 3.0


def test_with_history_a_load_is_seen_done_right_after_its_expected_end() -> None:
    seen, took = watch(Expected(2.4, 2.4), done_at=2.45)
    assert seen == [0.5, 1.0, 2.0, 2.28, 2.38, 2.48]  # from 5 % before the expected end, 0.1 s apart
    assert seen[-1] - 2.45 < 0.05  # seen 0.03 s after its end (the ladder alone: at 3.0 s), two looks more
    assert took == pytest.approx((2.38 + 2.48) / 2)


def test_a_load_at_the_slower_of_two_recent_speeds_is_seen_at_its_end() -> None:
    # Milvus 2.3.5's small loads took about 2.3 s or about 3.3 s (bench.scenarios.latency, 2026-11-30): one at
    # 3.35 s was looked at last at 3.26 s, then only 2 s later, at 5.28 s
    times = LoadTimes()
    for seconds in (2.31, 3.32, 2.33, 2.30, 3.38, 2.32, 2.34):
        times = times.record(seconds)
    seen, _ = watch(times.expected(), done_at=3.35)
    assert seen[-1] - 3.35 <= 0.15  # seen within a fine look of its end, not a ladder step later
    assert len(seen) <= 16  # looks aimed at both speeds: a bounded number of get_load_state calls


def test_a_load_at_the_usual_speed_gets_no_more_looks_for_an_occasional_slow_one() -> None:
    times = LoadTimes()
    for seconds in (2.31, 3.32, 2.33, 2.30, 2.32, 2.34):
        times = times.record(seconds)
    with_slow, _ = watch(times.expected(), done_at=2.35)
    only_fast, _ = watch(LoadTimes((2.31, 2.33, 2.30, 2.32, 2.34, 2.33)).expected(), done_at=2.35)
    assert with_slow == only_fast


def test_a_long_load_gets_as_few_fine_looks_as_a_short_one() -> None:
    seen, _ = watch(Expected(60.0, 60.0), done_at=63.0)
    fine = [at for at in seen if 57.0 <= at <= 66.0]
    assert fine == [57.0, 59.0, 61.0, 63.0]  # a few looks across 57-66 s (the ladder's 2 s), not one every 0.1 s


def test_a_load_much_slower_than_expected_falls_back_to_the_ladder() -> None:
    seen, _ = watch(Expected(1.0, 1.0), done_at=30.0)
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert max(gaps) == 2.0 and sum(1 for gap in gaps if gap < 0.2) <= 5  # a few short looks, then the ladder


def test_a_release_or_a_load_seen_half_way_is_not_a_duration() -> None:
    seen_midway = PassState(rechecks=3, observed=loading(50), first=Sample(0.0, 50), last=Sample(1.0, 50))
    step_ = next_pass(seen_midway, observed=SETTLED, acted=False, failure=None, timing=TIMING, draw=0.5, now=2.0)
    assert step_.loaded_in is None


def test_load_times_are_the_median_and_the_longest_of_the_last_few() -> None:
    times = LoadTimes()
    assert times.expected() is None
    for seconds in (2.4, 2.5, 9.0, 2.3):
        times = times.record(seconds)
    expected = times.expected()
    assert expected is not None and expected.typical == pytest.approx(2.45)  # the median
    assert expected.longest == 9.0  # the slowest, for a second aim
    for _ in range(20):
        times = times.record(1.0)
    assert times.expected() == Expected(1.0, 1.0) and len(times.recent) == 9


CONFIRMED = Observed(StateReport(LoadState.LOADED), {"a": StateReport(LoadState.LOADED)}, confirmed=True)


def settled(state: PassState, observed: Observed, now: float) -> Step:
    return next_pass(state, observed=observed, acted=False, failure=None, timing=TIMING, draw=0, now=now, settled=True)


def test_an_in_sync_pass_hands_its_picture_to_confirmation_passes() -> None:
    first = settled(PassState(), SETTLED, 100.0)
    assert first == Step(PassState(observed=SETTLED, full_at=100.0), 30.0, Mode.CONFIRM)
    later = settled(first.state, CONFIRMED, 130.0)
    assert later == Step(PassState(observed=CONFIRMED, full_at=100.0), 30.0, Mode.CONFIRM)  # the full one's time


def test_a_full_observation_comes_back_once_the_last_is_full_observation_seconds_old() -> None:
    state = PassState(observed=CONFIRMED, full_at=100.0)
    modes = [settled(state, CONFIRMED, now).mode for now in (340.0, 369.9, 370.0, 400.0)]
    assert modes == [Mode.CONFIRM, Mode.CONFIRM, Mode.FULL, Mode.FULL]  # the next pass (now + 30 s) would be 300 s on
    fresh = settled(state, SETTLED, 400.0)
    assert fresh.state.full_at == 400.0 and fresh.mode == Mode.CONFIRM  # a full observation restarts the count


@pytest.mark.parametrize(
    ("observed", "acted", "failure", "in_sync"),
    [
        pytest.param(SETTLED, False, None, False, id="not-in-sync"),
        pytest.param(SETTLED, True, None, True, id="acted"),
        pytest.param(None, False, DOWN, False, id="failed"),
        pytest.param(LOADING, False, None, True, id="loading"),
        pytest.param(None, False, None, True, id="nothing-observed"),
    ],
)
def test_only_an_in_sync_full_picture_is_confirmed_instead_of_observed(
    observed: Observed | None, acted: bool, failure: Failure | None, in_sync: bool
) -> None:
    state = PassState(observed=CONFIRMED, full_at=100.0)
    after = next_pass(
        state, observed=observed, acted=acted, failure=failure, timing=TIMING, draw=0.5, now=130.0, settled=in_sync
    )
    assert after.mode != Mode.CONFIRM
    assert after.state.full_at == (130.0 if observed is LOADING else None)  # a full picture of a load: its time


def test_after_loads_only_the_next_pass_rechecks_them_and_the_full_observation_keeps_its_time() -> None:
    before = Observed(StateReport(LoadState.NOT_LOAD), {"a": StateReport(LoadState.NOT_LOAD)})
    began = started(before, (LoadCollection(),))
    assert began is not None
    sent = next_pass(PassState(), observed=before, acted=True, failure=None, timing=TIMING, draw=0.5, now=100.0,
                     started=began)  # fmt: skip
    assert sent == Step(PassState(rechecks=1, observed=began, full_at=100.0, first=Sample(100.0, 0)), 0.5, Mode.RECHECK)
    answer = replace(began, collection=StateReport(LoadState.LOADING, 40))  # a re-check: still partial
    loading = next_pass(sent.state, observed=answer, acted=False, failure=None, timing=TIMING, draw=0.5, now=101.0)
    assert loading.mode == Mode.RECHECK and loading.state.full_at == 100.0
    done = settled(loading.state, CONFIRMED, 103.0)  # the load's end, confirmed without a full observation
    assert done.mode == Mode.CONFIRM and done.state.full_at == 100.0 and done.loaded_in == 2.0
    assert settled(done.state, CONFIRMED, 370.0).mode == Mode.FULL  # 300 s after the observation before the load


def test_after_a_release_the_next_pass_observes_in_full() -> None:
    before = Observed(StateReport(LoadState.LOADED), {"a": StateReport(LoadState.LOADED)})
    assert started(before, (ReleaseCollection(),)) is None
    after = next_pass(PassState(), observed=before, acted=True, failure=None, timing=TIMING, draw=0.5, now=100.0)
    assert after.mode == Mode.FULL


@pytest.mark.parametrize(
    ("reason", "ready"),
    [pytest.param(Reason.IN_SYNC, True, id="managed-in-sync"), pytest.param(Reason.OBSERVING, True, id="observe-mode")],
)
def test_an_observer_with_nothing_loading_gets_the_cheap_confirm_pass_like_an_in_sync_resource(
    reason: Reason, ready: bool
) -> None:
    """Item 11 of issue 29: Observe-mode resources were observed in full every resync (P + 4 calls)."""
    result = Result({}, Verdict(ready, reason, "", False, False), (), SETTLED, False, None)
    observed, acted, failure, in_sync, began, _ = carried(result)
    after = next_pass(PassState(), observed=observed, acted=acted, failure=failure, timing=TIMING, draw=0.5,
                      now=100.0, settled=in_sync, started=began)  # fmt: skip
    assert after.mode == Mode.CONFIRM and after.state.observed == SETTLED


BUDGETED = replace(TIMING, full_observation_seconds=300.0)


def test_with_a_handful_of_resources_on_the_server_the_full_observation_is_due_every_resync() -> None:
    """Item 13 of issue 29: a partition created outside the operator waited for the 300 s ceiling under 4 resources."""
    timing = replace(BUDGETED, calls_per_second=50.0)
    state = PassState()
    for now in (100.0, 130.0, 160.0):
        after = next_pass(state, observed=SETTLED, acted=False, failure=None, timing=timing, draw=0.5, now=now,
                          settled=True, resources=4)  # fmt: skip
        assert after.mode == Mode.FULL and after.delay == 30.0 and after.state.full_at == now
        state = after.state


TWO_LOADED = Observed(
    StateReport(LoadState.LOADED), {name: StateReport(LoadState.LOADED) for name in ("_default", "b")}
)


@pytest.mark.parametrize(
    ("resources", "calls_per_second", "ceiling", "every"),
    [
        pytest.param(4, 50.0, 300.0, 30.0, id="a-handful-every-resync"),
        pytest.param(250, 50.0, 300.0, 30.0, id="250-just-every-resync"),  # 250 confirm + 1,250 full calls = 1,500
        pytest.param(500, 50.0, 300.0, 75.0, id="500-every-2.5-resyncs"),  # 1,000 calls left for 2,500 extra
        pytest.param(1_000, 50.0, 300.0, 300.0, id="1000-the-ceiling"),  # 500 calls left for 5,000 extra: 300 s
        pytest.param(2_000, 50.0, 300.0, 300.0, id="2000-the-ceiling"),  # confirmations alone take 2,000 of 1,500
        pytest.param(10_000, 50.0, 300.0, 300.0, id="10000-the-ceiling"),
        pytest.param(4, 0.0, 300.0, 300.0, id="no-budget-the-ceiling"),
        pytest.param(4, 50.0, 0.0, 0.0, id="ceiling-0-every-pass"),
    ],
)
def test_full_observations_come_as_often_as_the_connection_call_budget_allows(
    resources: int, calls_per_second: float, ceiling: float, every: float
) -> None:
    timing = replace(TIMING, full_observation_seconds=ceiling, calls_per_second=calls_per_second)
    full, confirming = calls(TWO_LOADED)
    assert (full, confirming) == (6, 1)  # get_load_state x3, list_partitions, describe, describe_replica; 2 together
    assert full_every(resources, timing, full, confirming) == every


def test_a_pass_that_acted_and_then_stalled_looks_again_soon_not_after_a_whole_resync() -> None:
    """Issue 29 item 8: the calls that went through changed Milvus, so the stalled reason is judged afresh soon."""
    after = step(PassState(), SETTLED, acted=True, failure=STALLED)
    assert after.mode == Mode.FULL
    assert after.delay < TIMING.resync_seconds
    assert after.state.failures == 1  # still counted: a failing resource backs off on later passes


def test_a_stalled_pass_that_did_nothing_still_waits_a_resync() -> None:
    after = step(PassState(), SETTLED, acted=False, failure=STALLED)
    assert after.delay == TIMING.resync_seconds


# --- this_pass: which kind of pass, from which picture ---------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "picture", "woken", "settled", "expected"),
    [
        pytest.param(Mode.RECHECK, LOADING, True, False, Pass(), id="a-change-wakes-a-first-pass"),
        pytest.param(Mode.CONFIRM, SETTLED, True, True, Pass(), id="a-change-beats-a-confirmation"),
        pytest.param(Mode.FULL, None, False, False, Pass(PassKind.FULL), id="full-after-a-pass-not-in-sync"),
        pytest.param(Mode.FULL, SETTLED, False, True, Pass(PassKind.FULL, settled=True), id="periodic-full-of-steady"),
        pytest.param(Mode.RECHECK, LOADING, False, False, Pass(PassKind.RECHECK, LOADING), id="recheck-of-loading"),
        pytest.param(
            Mode.RECHECK, LOADING, False, True, Pass(PassKind.RECHECK, LOADING, True), id="recheck-for-an-observer"
        ),
        pytest.param(
            Mode.CONFIRM, SETTLED, False, True, Pass(PassKind.CONFIRM, SETTLED, True), id="confirm-in-sync-picture"
        ),
        pytest.param(Mode.RECHECK, None, False, False, Pass(PassKind.FULL), id="no-picture-to-narrow-observes-in-full"),
    ],
)
def test_this_pass(mode: Mode, picture: Observed | None, woken: bool, settled: bool, expected: Pass) -> None:
    assert this_pass(mode, picture, woken=woken, settled=settled) == expected


@pytest.mark.parametrize(
    ("kind", "picture"),
    [(PassKind.RECHECK, None), (PassKind.CONFIRM, None), (PassKind.FIRST, SETTLED), (PassKind.FULL, LOADING)],
)
def test_a_pass_has_an_earlier_picture_exactly_when_it_narrows_to_one(kind: PassKind, picture: Observed | None) -> None:
    with pytest.raises(ValueError, match="earlier picture"):
        Pass(kind, picture)


@pytest.mark.parametrize(
    ("this", "mode", "urgent", "priority"),
    [
        (FIRST_PASS, Mode.FULL, True, Priority.CHANGE),
        (Pass(PassKind.FULL), Mode.FULL, False, Priority.FOLLOW),
        (Pass(PassKind.FULL, settled=True), Mode.FULL, False, Priority.BACKGROUND),
        (Pass(PassKind.RECHECK, LOADING), Mode.RECHECK, False, Priority.FOLLOW),
        (Pass(PassKind.RECHECK, LOADING, settled=True), Mode.RECHECK, False, Priority.BACKGROUND),
        (Pass(PassKind.CONFIRM, SETTLED, settled=True), Mode.CONFIRM, False, Priority.BACKGROUND),
    ],
)
def test_what_a_pass_observes_and_where_its_reads_queue(
    this: Pass, mode: Mode, urgent: bool, priority: Priority
) -> None:
    assert (this.mode, this.urgent, for_pass(this)) == (mode, urgent, priority)
