"""Where an operator process spends its CPU, from py-spy's collapsed stacks (`--profile` of bench.scenarios.scale10k).

    .venv/bin/python -m bench.lib.profile_summary bench/out/profile-operator-1.txt

Each sample is charged to the package of its innermost frame ("self") and to every package on its
stack ("inclusive"), so the table says both what burns the CPU and on whose behalf.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# a frame belongs to the first package named by a folder of its path (py-spy shortens paths: "kopf/_core/x.py")
PACKAGES = (
    "milvusops",
    "kopf",
    "pymilvus",
    "grpc",
    "aiohttp",
    "kubernetes",
    "prometheus_client",
    "protobuf",
    "json",
    "asyncio",
    "concurrent",
)
MODULES = {"ssl.py": "ssl", "threading.py": "threading", "selectors.py": "asyncio"}  # top-level modules
FRAME = re.compile(r"\((?P<path>[^()]*?)(?::\d+)?\)$")


@dataclass(frozen=True)
class Summary:
    samples: int
    own: Counter[str]  # innermost frame's package
    inclusive: Counter[str]  # any frame's package

    def table(self) -> str:
        lines = ["| package | self | inclusive |", "|---|---|---|"]
        for name, _ in self.inclusive.most_common():
            own, inclusive = self.own[name] / self.samples, self.inclusive[name] / self.samples
            lines.append(f"| {name} | {own:.0%} | {inclusive:.0%} |")
        return "\n".join(lines)


def package(frame: str) -> str:
    found = FRAME.search(frame)
    parts = (found.group("path") if found else frame).split("/")
    for name in PACKAGES:
        if name in parts[:-1]:
            return name
    return MODULES.get(parts[-1], "other")


def summarize(lines: Iterable[str]) -> Summary:
    own, inclusive, samples = Counter[str](), Counter[str](), 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        samples += count
        own[package(frames[-1])] += count
        for name in {package(frame) for frame in frames}:
            inclusive[name] += count
    return Summary(samples, own, inclusive)


def main() -> int:
    for path in sys.argv[1:]:
        summary = summarize(Path(path).read_text(errors="replace").splitlines())
        print(f"{path}: {summary.samples} samples\n{summary.table()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
