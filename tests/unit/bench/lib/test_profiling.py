"""bench.lib.profiling's output folder: bench/out/, the one .gitignore and docs/design/performance.md name."""

from pathlib import Path

from bench.lib.profiling import OUT


def test_results_go_to_bench_out() -> None:
    assert Path(__file__).resolve().parents[4] / "bench" / "out" == OUT
