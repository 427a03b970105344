"""A fair burst's pure parts (bench/lib/repeats.py): the seeded order of runs, median and spread, paired ratios."""

from __future__ import annotations

from collections import Counter

import pytest
from bench.lib.baselines import Shape
from bench.lib.repeats import Spread, paired_ratios, run_order
from bench.scenarios.burst import summarise

SIDES = ("asyncio", "floor", "operator")


def test_every_side_runs_as_often_as_asked() -> None:
    assert Counter(run_order(SIDES, 3, seed=7)) == {"asyncio": 3, "floor": 3, "operator": 3}


def test_the_same_seed_gives_the_same_order() -> None:
    assert run_order(SIDES, 3, seed=42) == run_order(SIDES, 3, seed=42)


def test_seeds_give_different_orders() -> None:
    assert len({tuple(run_order(SIDES, 3, seed)) for seed in range(20)}) > 10


@pytest.mark.parametrize("seed", range(10))
def test_last_side_ends_the_order_and_keeps_its_count(seed: int) -> None:
    order = run_order(SIDES, 3, seed, last="operator")
    assert order[-1] == "operator"
    assert Counter(order) == {"asyncio": 3, "floor": 3, "operator": 3}


def test_no_repeats_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run_order(SIDES, 0, seed=1)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([5.0], Spread(5.0, 5.0, 5.0)),
        ([3.0, 1.0, 2.0], Spread(2.0, 1.0, 3.0)),
        ([4.0, 1.0, 2.0, 3.0], Spread(2.5, 1.0, 4.0)),
    ],
)
def test_spread_is_median_min_and_max(values: list[float], expected: Spread) -> None:
    assert Spread.of(values) == expected


def test_spread_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        Spread.of([])


def test_spread_formats() -> None:
    assert Spread(12.44, 11.9, 13.06).seconds() == "12.4 s (11.9\u201313.1)"
    assert Spread(0.154, 0.1449, 0.161).ratio() == "0.15 (0.14\u20130.16)"


def test_ratios_pair_runs_by_their_index() -> None:
    assert paired_ratios([6.0, 9.0, 4.0], [3.0, 3.0, 8.0]) == [2.0, 3.0, 0.5]


def test_ratios_of_unequal_runs_are_refused() -> None:
    with pytest.raises(ValueError, match="2 runs against 3"):
        paired_ratios([1.0, 2.0], [1.0, 2.0, 3.0])


def test_burst_rows_give_median_and_spread_of_each_side_and_of_the_paired_ratios() -> None:
    seconds = {"asyncio": [40.0, 50.0, 45.0], "floor": [3.0, 2.0, 4.0], "operator": [6.0, 5.0, 8.0]}
    result = summarise(Shape(100, 1), 8, 1234, seconds)
    against_asyncio, against_floor = result.rows
    assert against_asyncio.measured == "6.0 s (5.0\u20138.0)"
    assert against_asyncio.baseline == "45.0 s (40.0\u201350.0) asyncio, each load awaited"
    assert against_asyncio.ratio == "0.15 (0.10\u20130.18)"  # 6/40, 5/50, 8/45
    assert against_floor.baseline == "3.0 s (2.0\u20134.0) all loads started, then polled"
    assert against_floor.ratio == "2.00 (2.00\u20132.50)"  # 6/3, 5/2, 8/4
    assert "seed 1234" in result.summary


def test_a_burst_run_without_one_baseline_gives_rows_only_for_the_others() -> None:
    seconds = {"floor": [200.0, 190.0], "operator": [380.0, 400.0]}  # --baselines floor: asyncio took 988 s alone
    result = summarise(Shape(1000, 1), 8, 13, seconds)
    (against_floor,) = result.rows
    assert against_floor.ratio == "2.00 (1.90\u20132.11)"  # 380/200, 400/190
    assert "asyncio" not in result.summary
