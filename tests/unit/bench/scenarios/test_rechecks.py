"""bench.scenarios.rechecks: the order of its blocks, the rates it reads and the ratios it reports."""

from bench.scenarios.rechecks import ALONE, Block, block_order, rates_of, summarise


def test_blocks_run_in_mirrored_cycles_so_a_steady_drift_weighs_on_every_kind_alike() -> None:
    order = block_order(16, ["a", "b", "c"])
    assert order[:8] == [ALONE, "a", "b", "c", "c", "b", "a", ALONE]
    assert order[8:] == order[:8]
    # a drift that grows with the block's index adds up the same for every kind
    positions = {kind: sum(i for i, beside in enumerate(order) if beside == kind) for kind in (ALONE, "a", "b", "c")}
    assert len(set(positions.values())) == 1


def test_rates_are_read_as_kind_equals_calls_a_second() -> None:
    assert rates_of("get_load_state=40,get_metrics=2.5") == {"get_load_state": 40.0, "get_metrics": 2.5}


def test_the_summary_compares_each_kind_with_the_blocks_alone_of_the_same_run() -> None:
    blocks = [
        Block(ALONE, 600, [0.1, 0.1], 4.0, 0),
        Block("get_metrics", 602, [0.3, 0.3], 6.0, 30),
        Block("get_metrics", 604, [0.3, 0.5], 10.0, 50),
        Block(ALONE, 606, [0.1, 0.2], 5.0, 0),
    ]
    result = summarise(blocks)
    assert "600 to 608 loaded, alone: load call median 0.100s, block of 2 4.5s" in result.summary
    assert "5 get_metrics/s beside: 0.300s (ratio 3.00), 8.0s (ratio 1.78)" in result.summary
    assert [row.ratio for row in result.rows] == ["3.00", "1.78"]
