"""bench.rechecks: the order of its blocks and the ratios it reports."""

from bench.rechecks import Block, block_order, summarise


def test_blocks_alternate_alone_polled_polled_alone_so_a_steady_drift_weighs_on_both_alike() -> None:
    order = block_order(8)
    assert order == [False, True, True, False, False, True, True, False]
    # a drift that grows with the block's index adds up the same on both sides
    assert sum(i for i, polled in enumerate(order) if polled) == sum(i for i, polled in enumerate(order) if not polled)


def test_the_summary_compares_polled_blocks_with_the_blocks_alone_of_the_same_run() -> None:
    blocks = [
        Block(False, 600, [0.1, 0.1], 4.0, 0),
        Block(True, 602, [0.3, 0.3], 6.0, 240),
        Block(True, 604, [0.3, 0.5], 10.0, 400),
        Block(False, 606, [0.1, 0.2], 5.0, 0),
    ]
    result = summarise(blocks)
    assert "600 to 608 loaded" in result.summary
    assert "median 0.300s with 40 get_load_state/s" in result.summary
    assert "0.100s alone (ratio 3.00)" in result.summary
    assert "median 8.0s polled, 4.5s alone (ratio 1.78)" in result.summary
    assert [row.ratio for row in result.rows] == ["3.00", "1.78"]
