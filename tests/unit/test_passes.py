"""next_pass: what one pass hands to the next, and when the next one runs (table tests)."""

from __future__ import annotations

import pytest

from milvusops.failures import Failure, Reason
from milvusops.milvus import StateReport
from milvusops.model import LoadState
from milvusops.observe import Observed
from milvusops.passes import Mode, PassState, Step, Timing, backoff, next_pass

TIMING = Timing(resync_seconds=30.0, loading_recheck_seconds=2.0)
LOADING = Observed(StateReport(LoadState.LOADED), {"a": StateReport(LoadState.LOADING, 50)})
SETTLED = Observed(StateReport(LoadState.LOADED), {"a": StateReport(LoadState.LOADED)})
DOWN = Failure(Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus")
STALLED = Failure(Reason.INDEX_NOT_FOUND, "no index")


def step(state: PassState, observed: Observed | None = None, acted: bool = False, failure: Failure | None = None,
         draw: float = 0.5) -> Step:  # fmt: skip
    return next_pass(state, observed=observed, acted=acted, failure=failure, timing=TIMING, draw=draw)


@pytest.mark.parametrize(
    ("state", "observed", "acted", "failure", "expected"),
    [
        pytest.param(PassState(), SETTLED, False, None, Step(PassState(), 30.0, Mode.FULL), id="in-sync-resync"),
        pytest.param(PassState(), SETTLED, True, None, Step(PassState(rechecks=1), 0.5, Mode.FULL), id="acted-full"),
        pytest.param(PassState(), LOADING, True, None, Step(PassState(rechecks=1), 0.5, Mode.FULL), id="acted-loading"),
        pytest.param(
            PassState(rechecks=1),
            LOADING,
            False,
            None,
            Step(PassState(rechecks=2, observed=LOADING), 0.5, Mode.RECHECK),
            id="loading-rechecks",
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
