"""Operator-only burst with a timeline: where the time of a burst goes, not a ratio.

Creates N collections and N MilvusCollections at once, then every few seconds prints how many
resources have a status and how many are Ready, their Ready reasons, the CPU share of Milvus, the
API server, etcd and the operator since the last line, and the operator's Milvus calls by method.
Ends with the Kubernetes writes the API server counted and the operator's RSS (`--profile`: py-spy).
No baseline: use `bench.scenarios.burst` or `bench.all` for ratios.

    .venv/bin/python -m bench.scenarios.timeline [--resources 1000] [--partitions 1] [--every 10] [--timeout 600]
        [--setting KEY=VALUE ...]

It ends with each method's calls: how many, and their mean time from asking to answer (slot wait
included), so a burst's Milvus time can be split by method. --setting MILVUSOPS_MEMORY_GUARD=off, for
example, shows what the capacity guard's reads cost a burst.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from bench.lib.apiwrites import describe, split_writes, write_counts
from bench.lib.baselines import Shape
from bench.lib.environment import environment
from bench.lib.operator_metrics import calls_by_method, milliseconds_by_method, operator_group
from bench.lib.process import TICKS, cpu_ticks, usage
from bench.lib.resources import create_all, desired, in_sync, listing, ready_condition
from bench.lib.setup import create_collections, partition_names


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=1, help="as in bench.scenarios.burst")
    parser.add_argument("--every", type=float, default=10, help="seconds between lines")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--setting", action="append", default=[], help="KEY=VALUE for the operator's environment")
    parser.add_argument("--profile", action="store_true", help="record the operator with py-spy (raw), summarised")
    args = parser.parse_args()
    shape = Shape(args.resources, args.partitions)
    with environment("timeline", profile=args.profile, raw_profile=args.profile) as env:
        operator = env.start_operator(**dict(item.split("=", 1) for item in args.setting))
        with env.setup.measure(str(shape)):
            names = create_collections(env.milvus, shape.collections, partition_names(shape.partitions))
        specs = {f"t-{index}": desired(name, shape.listed) for index, name in enumerate(names)}
        writes_before = write_counts(env.kube)
        started = time.perf_counter()
        last, last_at = cpu_ticks(), time.monotonic()
        create_all(env.kube, env.namespace, specs)
        print(f"timeline {shape}: created in {time.perf_counter() - started:.1f}s", flush=True)
        ready = 0
        while ready < len(specs) and time.perf_counter() - started < args.timeout:
            time.sleep(args.every)
            items = listing(env.kube, env.namespace)
            ready = sum(in_sync(item) for item in items)
            with_status = sum(bool(item.get("status")) for item in items)
            reasons = Counter(ready_condition(item).get("reason", "none") for item in items)
            now, now_at = cpu_ticks(), time.monotonic()
            share = {name: round(100 * (now[name] - last[name]) / TICKS / (now_at - last_at)) for name in now}
            last, last_at = now, now_at
            calls = dict(sorted(calls_by_method(operator.metrics()).items()))
            print(
                f"{time.perf_counter() - started:6.1f}s: status {with_status}, Ready {ready} of {len(specs)}; "
                f"reasons {dict(reasons)}; CPU % {share}; Milvus calls {calls}",
                flush=True,
            )
        ours, _ = split_writes(writes_before, write_counts(env.kube))
        print(f"  Kubernetes writes (API server's count, creates included): {describe(ours)}", flush=True)
        text = operator.metrics()
        counts, spent = calls_by_method(text), milliseconds_by_method(text)
        for method, count in sorted(counts.items()):
            print(f"  {method}: {count} calls, mean {spent[method] / max(count, 1):.1f} ms", flush=True)
        peak = usage(operator_group(operator))
        print(
            f"timeline {shape}: {ready}/{len(specs)} Ready after {time.perf_counter() - started:.1f}s; "
            f"operator RSS {peak.rss_bytes / 2**20:.0f} MB, peak {peak.peak_rss_bytes / 2**20:.0f} MB",
            flush=True,
        )
        return 0 if ready == len(specs) else 1


if __name__ == "__main__":
    sys.exit(main())
