"""Scale: N MilvusCollections against the scale stand-in (bench/standin, NOT a Milvus), on the real
kube-apiserver, with K operator processes (shards), against the stand-in driven directly in the same run.

    .venv/bin/python -m bench.scenarios.scale10k --resources 1000 [--shards 1] [--concurrency 8] [--steady-seconds 120]
        [--ddl-concurrency 1] [--queued N]

Order: the floor (N loads straight over gRPC, started then polled); the burst of N resources until all
Ready; steady state (Kubernetes writes, Milvus calls per partition per resync); restart of every shard
(load/release calls, time until every resource is observed); CPU and RSS of operator, API server and
stand-in. Shard i serves resources labelled sharding.milvusops.dev/key=shard<i>; each shard gets
--concurrency Milvus calls at a time and the floor gets K x --concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
from concurrent.futures import ThreadPoolExecutor

from bench.lib import report
from bench.lib.baselines import Shape, direct_started
from bench.lib.environment import Environment, environment
from bench.lib.operator_metrics import describe_calls
from bench.lib.profile_summary import summarize
from bench.lib.report import Result, Row
from bench.lib.resources import CREATE_WIDTH, wait_ready
from bench.standin import direct
from bench.standin.phases import restart, steady
from bench.standin.process import StandInServer
from bench.standin.readings import cpu_percent, read

SHARD_KEY = "sharding.milvusops.dev/key"


def shard_settings(
    shard: int, shards: int, concurrency: int, resync: float, queued: int | None = None
) -> dict[str, str]:
    settings = {"MILVUSOPS_MAX_CONCURRENT_CALLS": str(concurrency), "MILVUSOPS_RESYNC_SECONDS": str(resync)}
    if queued is not None:  # otherwise the operator's default for the version the stand-in reports
        settings["MILVUSOPS_MAX_QUEUED_CALLS"] = str(queued)
    if shards > 1:
        settings["MILVUSOPS_WATCH_LABEL_SELECTOR"] = f"{SHARD_KEY}=shard{shard}"
        settings["MILVUSOPS_SERVE_CONNECTIONS"] = "true" if shard == 0 else "false"  # one owner of connections
    return settings


def create_resources(env: Environment, collections: list[str], shards: int) -> list[str]:
    def create(index: int) -> str:
        name = f"r-{index}"
        labels = {SHARD_KEY: f"shard{index % shards}"} if shards > 1 else {}
        spec = {"collectionName": collections[index], "state": "Loaded"}
        env.kube.create(env.namespace, name, spec, labels=labels)
        return name

    with ThreadPoolExecutor(CREATE_WIDTH) as pool:
        return list(pool.map(create, range(len(collections))))


def run(args: argparse.Namespace) -> list[Result]:
    count, shards = args.resources, args.shards
    results: list[Result] = []
    standin = functools.partial(StandInServer, ddl_concurrency=args.ddl_concurrency)
    with environment("scale10k", server=standin, profile=args.profile, raw_profile=True) as env:
        address, token = env.milvus.uri.removeprefix("http://"), env.milvus.root_token
        theirs, threaded = [f"direct_{i}" for i in range(count)], [f"threads_{i}" for i in range(count)]
        ours = [f"op_{i}" for i in range(count)]
        with env.setup.measure(f"{3 * count} collections in the stand-in"):
            asyncio.run(direct.create(address, token, theirs + threaded + ours))
        width = args.concurrency * shards
        floor = asyncio.run(direct.loads(address, token, theirs, width))
        print(f"floor: {count} loads straight to the stand-in (asyncio gRPC), {width} at a time: {floor:.1f}s")
        # the operator's client: pymilvus's sync MilvusClient on a thread pool (burst's started-then-polled)
        pymilvus_floor = direct_started(env.milvus, Shape(count, 1), threaded, width)
        print(f"floor: the same with pymilvus MilvusClient on {width} threads: {pymilvus_floor:.1f}s", flush=True)
        settings = [
            shard_settings(s, shards, args.concurrency, args.resync_seconds, args.queued) for s in range(shards)
        ]
        operators = [env.start_operator(**setting) for setting in settings]
        start = read(env, operators)
        names = create_resources(env, ours, shards)
        wait_ready(env.kube, env.namespace, names, timeout=300 + 0.2 * count)
        ready = read(env, operators)
        burst = ready.at - start.at
        results.append(
            Result(
                f"burst: {count} resources, {shards} shard(s): {burst:.1f}s vs floor {floor:.1f}s "
                f"(ratio {burst / floor:.2f}), pymilvus threads {pymilvus_floor:.1f}s "
                f"(ratio {burst / pymilvus_floor:.2f}); CPU {cpu_percent(start, ready)}; Milvus calls per resource: "
                f"{describe_calls(ready.calls - start.calls, count)}",
                (
                    Row(
                        f"burst of {count}, {shards} shard(s): create → all Ready",
                        f"{burst:.1f} s",
                        f"{floor:.1f} s stand-in driven directly",
                        f"{burst / floor:.2f}",
                    ),
                    Row(
                        f"burst of {count}, {shards} shard(s): create → all Ready",
                        f"{burst:.1f} s",
                        f"{pymilvus_floor:.1f} s pymilvus MilvusClient on {width} threads, started then polled",
                        f"{burst / pymilvus_floor:.2f}",
                    ),
                    Row(f"burst of {count}, {shards} shard(s): CPU (% of one core)", cpu_percent(start, ready)),
                    Row(
                        f"burst of {count}, {shards} shard(s): Milvus calls per resource",
                        describe_calls(ready.calls - start.calls, count),
                    ),
                ),
            )
        )
        print(results[-1].summary, flush=True)
        results.append(steady(env, operators, args.resync_seconds, args.steady_seconds))
        print(results[-1].summary, flush=True)
        restarted, operators = restart(env, operators, settings, args.concurrency * shards)
        results.append(restarted)
        print(results[-1].summary, flush=True)
        results.append(Result(report.machine(env), ()))
    if env.profiler is not None:  # py-spy writes its stacks once the operators are stopped
        for output in env.profiler.outputs:
            if output.exists():
                print(f"{output}:\n{summarize(output.read_text(errors='replace').splitlines()).table()}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=1000, help="MilvusCollections, one collection each")
    parser.add_argument("--shards", type=int, default=1, help="operator processes, each with a label selector")
    parser.add_argument("--concurrency", type=int, default=8, help="Milvus calls at a time per operator process")
    parser.add_argument("--steady-seconds", type=float, default=120)
    parser.add_argument("--resync-seconds", type=float, default=30)
    parser.add_argument("--profile", action="store_true", help="py-spy on each operator: CPU by package, at the end")
    parser.add_argument(
        "--ddl-concurrency", type=int, default=1, help="the stand-in's DDL requests at a time (1: as Milvus 2.3.5)"
    )
    parser.add_argument(
        "--queued", type=int, default=None, help="MILVUSOPS_MAX_QUEUED_CALLS of each shard (default: the operator's)"
    )
    args = parser.parse_args()
    results = run(args)
    print("\n".join(result.summary for result in results))
    print("\n" + report.table([row for result in results for row in result.rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
