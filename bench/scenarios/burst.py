"""Burst: N MilvusCollections created at once until all are Ready, against direct pymilvus scripts
issuing the same loads with the same concurrency limit, in the same run.

    .venv/bin/python -m bench.scenarios.burst [--resources 100] [--partitions 1] [--concurrency 8]
        [--repeats 3] [--seed N] [--baselines asyncio,floor] [--setting KEY=VALUE ...]

--partitions 1: each collection has one partition (plus `_default`) and its resource says
`state: Loaded`, so the operator and the scripts make one load_collection each. --partitions 5:
each resource lists its 5 partitions Loaded in spec.partitions (`_default` stays Released), so
everyone makes one load_partitions of those 5. --resources counts collections.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from pymilvus import AsyncMilvusClient
from tests.testenv.milvus import Server

from bench.lib import report
from bench.lib.baselines import Shape, direct_started
from bench.lib.connection import create_connection
from bench.lib.environment import Environment, environment
from bench.lib.profiling import OUT
from bench.lib.quiet import milvus_idle
from bench.lib.repeats import Spread, new_seed, paired_ratios, run_order
from bench.lib.report import Result, Row
from bench.lib.resources import create_all, delete_all, desired, wait_ready
from bench.lib.setup import create_collections, partition_names

LOAD_TIMEOUT = 600.0  # seconds one load may take in the direct scripts before they give up


def through_operator(
    env: Environment, shape: Shape, collections: list[str], connection: str | None = None
) -> tuple[float, list[str]]:
    specs = {
        f"b{shape.partitions}-{index}": desired(name, shape.listed, connection)
        for index, name in enumerate(collections)
    }
    started = time.perf_counter()
    create_all(env.kube, env.namespace, specs)
    wait_ready(env.kube, env.namespace, specs, shape.timeout())
    return time.perf_counter() - started, list(specs)


async def direct(milvus: Server, shape: Shape, collections: list[str], concurrency: int) -> float:
    """How a plain asyncio script loads: AsyncMilvusClient, `concurrency` loads at a time, each awaited to its end."""
    client = AsyncMilvusClient(uri=milvus.uri, token=milvus.root_token)
    limit = asyncio.Semaphore(concurrency)
    listed = shape.listed

    async def load(name: str) -> None:
        async with limit:
            if listed is None:
                await client.load_collection(name, timeout=LOAD_TIMEOUT)
            else:
                await client.load_partitions(name, listed, timeout=LOAD_TIMEOUT)

    started = time.perf_counter()
    await asyncio.gather(*(load(name) for name in collections))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


SIDES = ("asyncio", "floor", "operator")
LABELS = {
    "asyncio": "direct asyncio awaiting each load",
    "floor": "direct starting all loads then polling",
    "operator": "operator",
}
BASELINES = {"asyncio": "asyncio, each load awaited", "floor": "all loads started, then polled"}


def run(
    env: Environment,
    shape: Shape,
    concurrency: int,
    keep: bool = False,
    repeats: int = 3,
    seed: int | None = None,
    sides: tuple[str, ...] = SIDES,
    connection: str | None = None,
) -> tuple[Result, list[str]]:
    """Needs a running operator limited to `concurrency` calls; each of `sides` (the operator always among
    them) runs `repeats` times in an order shuffled by `seed`, each run on a freshly started Milvus. `keep`
    leaves the last operator run's resources (and their collections, loaded) for later benchmarks and
    returns their names. `connection`: the MilvusConnection the resources name (made once: a fresh Milvus keeps
    its URI and token)."""
    seed = new_seed() if seed is None else seed
    order = run_order(sides, repeats, seed, last="operator" if keep else None)
    print(f"burst {shape}: order {' '.join(order)} (--seed {seed})", flush=True)
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    names: list[str] = []
    for number, side in enumerate(order, 1):
        # Milvus 2.3.5 slows down with every collection it has held, loaded and dropped, and waiting
        # until it is idle does not undo that: each run gets a Milvus that has done nothing yet
        with env.setup.measure(f"fresh Milvus for {side} ({number}/{len(order)})"):
            env.fresh_milvus()
        with env.setup.measure(f"{shape} for {side}, then Milvus idle"):
            collections = create_collections(env.milvus, shape.collections, partition_names(shape.partitions))
            milvus_idle()
        if side == "asyncio":
            elapsed = asyncio.run(direct(env.milvus, shape, collections, concurrency))
        elif side == "floor":
            elapsed = direct_started(env.milvus, shape, collections, concurrency)
        else:
            elapsed, names = through_operator(env, shape, collections, connection)
        seconds[side].append(elapsed)
        print(f"burst {shape}: {LABELS[side]} {elapsed:.1f}s ({number}/{len(order)})", flush=True)
        if side == "operator" and not (keep and number == len(order)):
            with env.setup.measure(f"resources of burst {shape} deleted"):
                delete_all(env.kube, env.namespace, shape.timeout())
    return summarise(shape, concurrency, seed, seconds, connection), names if keep else []


def summarise(
    shape: Shape, concurrency: int, seed: int, seconds: dict[str, list[float]], connection: str | None = None
) -> Result:
    ours = seconds["operator"]
    spreads = {side: Spread.of(values) for side, values in seconds.items()}
    baselines = {side: label for side, label in BASELINES.items() if side in seconds}
    ratios = {side: Spread.of(paired_ratios(ours, seconds[side])) for side in baselines}
    via = f" through MilvusConnection {connection}" if connection else ""
    what = f"burst, {shape}{via}: create → all Ready, median (min\u2013max) of {len(ours)}"
    rows = tuple(
        Row(what, spreads["operator"].seconds(), f"{spreads[side].seconds()} {label}", ratios[side].ratio())
        for side, label in baselines.items()
    )
    sides = " | ".join(
        f"{LABELS[side]} {spreads[side].seconds()}" + (f" (ratio {ratios[side].ratio()})" if side in ratios else "")
        for side in ("operator", *baselines)
    )
    fair = f"{len(ours)} runs each on a fresh Milvus, seed {seed}"
    summary = f"burst: {shape}{via}, concurrency {concurrency}, {fair}: {sides}"
    return Result(summary, rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=100, help="collections (one MilvusCollection each)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions per collection, all Loaded")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, in a shuffled order")
    parser.add_argument("--seed", type=int, help="the order's seed, printed by every run (default: a new one)")
    parser.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help="comma-separated sides beside the operator's (asyncio took 988 s for 1,000 loads)",
    )
    parser.add_argument(
        "--connection", action="store_true", help="the resources go through a MilvusConnection and its Secret"
    )
    parser.add_argument("--setting", action="append", default=[], help="KEY=VALUE for the operator's environment")
    args = parser.parse_args()
    sides = ("operator", *(side for side in args.baselines.split(",") if side))
    unknown = set(sides) - set(SIDES)
    if unknown or len(sides) < 2:
        parser.error(f"--baselines: one or more of {', '.join(BASELINES)}, not {args.baselines!r}")
    with environment("burst") as env:
        settings = dict(item.split("=", 1) for item in args.setting)
        env.start_operator(**{"MILVUSOPS_MAX_CONCURRENT_CALLS": str(args.concurrency), **settings})
        shape = Shape(args.resources, args.partitions)
        connection = create_connection(env.kube, env.namespace, env.milvus) if args.connection else None
        result, _ = run(
            env, shape, args.concurrency, repeats=args.repeats, seed=args.seed, sides=sides, connection=connection
        )
        markdown = f"{report.machine(env)}\n\n{report.table(list(result.rows))}\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"burst-{shape.collections}x{shape.partitions}.md").write_text(markdown)  # bench.all's: results.md
    print(f"\n{result.summary}\n\n{markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
