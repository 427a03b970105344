"""Do re-checks beside loads slow Milvus's loads? One Milvus with a share of its collections loaded; the
rest loaded in blocks, 2 load calls in flight (the operator's share against Milvus before 2.5),
alternately alone and with get_load_state polls of the loaded collections beside them at the rate the
operator re-checks in a burst of 1,000. The baseline is the blocks without polls, in the same run.

    .venv/bin/python -m bench.rechecks [--collections 1000] [--preload 600] [--block 25] [--rate 40]

Blocks run alone, polled, polled, alone, ... so that Milvus slowing down with every collection it holds
loaded weighs on both kinds alike.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from pymilvus import MilvusClient
from tests.testenv.milvus import Server

from bench import report
from bench.environment import environment
from bench.quiet import milvus_idle
from bench.report import Result, Row
from bench.setup import create_collections

QUEUED = 2  # load calls in flight: the operator's share of queued calls against Milvus before 2.5
POLLERS = 6  # threads polling: the operator's call slots besides the queued share
LOAD_TIMEOUT = 600.0


@dataclass(frozen=True)
class Block:
    polled: bool
    loaded_before: int  # collections Milvus held loaded when the block started
    calls: list[float]  # seconds each load call took
    seconds: float  # first load sent → every load of the block Loaded
    polls: int  # get_load_state calls made beside the block


def block_order(blocks: int) -> list[bool]:
    """Whether each block runs polled: alone, polled, polled, alone, ... (balanced against a steady drift)."""
    return [index % 4 in (1, 2) for index in range(blocks)]


class Poller:
    """get_load_state over `names` (read as it grows) at `rate` calls a second in all, on POLLERS threads."""

    def __init__(self, client: MilvusClient, names: list[str], rate: float) -> None:
        self.client, self.names, self.rate = client, names, rate
        self.stopped = threading.Event()
        self.calls = itertools.count()
        self.made = 0
        self.threads = [threading.Thread(target=self._poll, args=(index,)) for index in range(POLLERS)]

    def _poll(self, offset: int) -> None:
        interval, due = POLLERS / self.rate, time.monotonic()
        for turn in itertools.count(offset, POLLERS):
            if self.stopped.wait(max(0.0, due - time.monotonic())):
                return
            due += interval
            self.client.get_load_state(self.names[turn % len(self.names)])
            next(self.calls)

    def __enter__(self) -> Poller:
        if self.rate > 0:
            for thread in self.threads:
                thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stopped.set()
        for thread in self.threads:
            if thread.is_alive():
                thread.join()
        self.made = next(self.calls)


def load_and_wait(client: MilvusClient, names: list[str], width: int) -> list[float]:
    """Start every load `width` at a time, then poll until all are Loaded; the seconds of each load call."""

    def load(name: str) -> float:
        started = time.perf_counter()
        client.load_collection(name, _async=True, sync=False)
        return time.perf_counter() - started

    with ThreadPoolExecutor(width) as pool:
        calls = list(pool.map(load, names))
    deadline, pending = time.monotonic() + LOAD_TIMEOUT, list(names)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} collections not Loaded, e.g. {pending[:5]}")
        pending = [name for name in pending if client.get_load_state(name)["state"].name != "Loaded"]
        if pending:
            time.sleep(0.25)
    return calls


def run_blocks(milvus: Server, names: list[str], preload: int, size: int, rate: float) -> list[Block]:
    client = milvus.client(timeout=LOAD_TIMEOUT)
    try:
        loaded = names[:preload]
        load_and_wait(client, loaded, width=8)
        rest = names[preload:]
        chunks = [rest[index : index + size] for index in range(0, len(rest) - size + 1, size)]
        blocks = []
        for polled, chunk in zip(block_order(len(chunks)), chunks, strict=True):
            before, started = len(loaded), time.perf_counter()
            with Poller(client, loaded, rate if polled else 0.0) as poller:
                calls = load_and_wait(client, chunk, width=QUEUED)
            blocks.append(Block(polled, before, calls, time.perf_counter() - started, poller.made))
            loaded.extend(chunk)
            print(describe(blocks[-1]), flush=True)
        return blocks
    finally:
        client.close()


def describe(block: Block) -> str:
    kind = f"polled ({block.polls / block.seconds:.0f} get_load_state/s)" if block.polled else "alone"
    return (
        f"block at {block.loaded_before} loaded, {kind}: {len(block.calls)} loads in {block.seconds:.1f}s, "
        f"load call median {statistics.median(block.calls):.3f}s, max {max(block.calls):.3f}s"
    )


def summarise(blocks: list[Block]) -> Result:
    alone = [block for block in blocks if not block.polled]
    polled = [block for block in blocks if block.polled]
    call = {kind: statistics.median(c for b in group for c in b.calls) for kind, group in (("a", alone), ("p", polled))}
    block = {kind: statistics.median(b.seconds for b in group) for kind, group in (("a", alone), ("p", polled))}
    rate = sum(b.polls for b in polled) / sum(b.seconds for b in polled)
    span = f"{blocks[0].loaded_before} to {blocks[-1].loaded_before + len(blocks[-1].calls)} loaded"
    summary = (
        f"load calls, {span}: median {call['p']:.3f}s with {rate:.0f} get_load_state/s beside them, "
        f"{call['a']:.3f}s alone (ratio {call['p'] / call['a']:.2f}); block of {len(blocks[0].calls)} until "
        f"Loaded: median {block['p']:.1f}s polled, {block['a']:.1f}s alone (ratio {block['p'] / block['a']:.2f})"
    )
    rows = (
        Row(
            f"load call, {span}, {QUEUED} in flight, {rate:.0f} get_load_state/s beside",
            f"{call['p']:.3f} s",
            f"{call['a']:.3f} s alone",
            f"{call['p'] / call['a']:.2f}",
        ),
        Row(
            f"block of {len(blocks[0].calls)} loads until Loaded, {span}, polled",
            f"{block['p']:.1f} s",
            f"{block['a']:.1f} s alone",
            f"{block['p'] / block['a']:.2f}",
        ),
    )
    return Result(summary, rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--preload", type=int, default=600, help="collections loaded before the first block")
    parser.add_argument("--block", type=int, default=25, help="loads per block")
    parser.add_argument("--rate", type=float, default=40, help="get_load_state calls a second beside polled blocks")
    args = parser.parse_args()
    if (args.collections - args.preload) // args.block < 2:
        parser.error("need at least two blocks: lower --preload or --block")
    with environment("rechecks") as env:
        with env.setup.measure(f"{args.collections} collections, then Milvus idle"):
            names = create_collections(env.milvus, args.collections, ["p"])
            milvus_idle()
        blocks = run_blocks(env.milvus, names, args.preload, args.block, args.rate)
        result = summarise(blocks)
        print(result.summary)
        print(report.machine(env))
    print("\n" + report.table(list(result.rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
