"""Every benchmark of docs/design/performance.md in ONE environment (one control plane, one Milvus, one
operator restarted once), printing each one-line summary and a markdown table for the docs.

    .venv/bin/python -m bench.all [--resources 1000] [--steady-seconds 300] [--profile]

Order: latency; bursts of 100 (when N > 100), of N/5 collections x 5 partitions and of N
collections, each against its baselines (each side run --repeats times in an order shuffled by
--seed, every run on a freshly started Milvus); the N-collection burst's resources stay for steady
state and restart. Setup and cleanup time is reported apart and not counted. The table is also
written to bench/out/results.md; --profile writes a py-spy flame graph per operator process there.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.lib import report
from bench.lib.baselines import Shape
from bench.lib.environment import environment
from bench.lib.profiling import OUT
from bench.lib.repeats import new_seed
from bench.lib.report import Result
from bench.lib.resources import delete_all
from bench.scenarios import burst, latency, restart, steady


def bursts(resources: int, partitions: int) -> list[tuple[Shape, bool]]:
    """(shape, keep its resources); the last one is kept for steady state and restart."""
    shapes = [(Shape(100, 1), False)] if resources > 100 else []
    if partitions > 1:
        shapes.append((Shape(max(1, resources // partitions), partitions), False))
    return [*shapes, (Shape(resources, 1), True)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=1000, help="N: collections of the main burst")
    parser.add_argument("--partitions", type=int, default=5, help="partitions per collection of the second burst")
    parser.add_argument("--steady-seconds", type=float, default=300)
    parser.add_argument("--resync-seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=8, help="Milvus calls at a time, operator and scripts")
    parser.add_argument("--latency-rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side of a burst, in a shuffled order")
    parser.add_argument("--seed", type=int, help="the bursts' order seed, printed (default: a new one)")
    parser.add_argument("--profile", action="store_true", help="record the operator with py-spy into bench/out/")
    args = parser.parse_args()
    started = time.perf_counter()
    seed = new_seed() if args.seed is None else args.seed  # one seed for every burst, so one --seed repeats the run
    results: list[Result] = []

    def done(result: Result) -> None:
        results.append(result)
        print(result.summary, flush=True)

    settings = {
        "MILVUSOPS_MAX_CONCURRENT_CALLS": str(args.concurrency),
        "MILVUSOPS_RESYNC_SECONDS": str(args.resync_seconds),
    }
    with environment("bench", profile=args.profile) as env:
        operator = env.start_operator(**settings)
        done(latency.run(env, args.latency_rounds))
        with env.setup.measure("latency resources deleted"):
            delete_all(env.kube, env.namespace, timeout=120)
        for shape, keep in bursts(args.resources, args.partitions):
            done(burst.run(env, shape, args.concurrency, keep, args.repeats, seed)[0])
        done(steady.run(env, operator, args.resync_seconds, args.steady_seconds))
        restarted, operator = restart.run(env, operator, settings, args.concurrency)
        done(restarted)
        machine = report.machine(env)
        setup_seconds = env.setup.seconds
    markdown = f"{machine}\n\n{report.table([row for result in results for row in result.rows])}\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.md").write_text(markdown)
    print("\n" + "\n".join(result.summary for result in results))
    print(f"setup and cleanup (not counted): {setup_seconds:.0f}s; whole run {time.perf_counter() - started:.0f}s")
    print("\n" + markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
