"""What every benchmark returns, and the markdown that goes into docs/design/performance.md."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from kubernetes import client

from bench.lib.environment import Environment
from bench.standin.process import StandInServer


@dataclass(frozen=True)
class Row:
    benchmark: str
    measured: str
    baseline: str = "—"
    ratio: str = "—"  # measured / baseline, or the figure against its target


@dataclass(frozen=True)
class Result:
    summary: str  # the one line printed at the end
    rows: tuple[Row, ...]


def machine(env: Environment) -> str:
    memory = _proc_field("/proc/meminfo", "MemTotal")
    gib = int(memory.split()[0]) / 2**20
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.machine()
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("kopf", "kubernetes", "pymilvus"))
    milvus = env.milvus.client()
    try:
        milvus_version = milvus.get_server_version()
    finally:
        milvus.close()
    kube_version = client.VersionApi(env.kube.api).get_code().git_version
    server = f"Milvus {milvus_version} (PyPI `milvus`, standalone)"
    if isinstance(env.milvus, StandInServer):
        ddl = env.milvus.ddl_concurrency
        server = f"the scale stand-in of bench/standin (not a Milvus; answers as {milvus_version}, {ddl} DDL at a time)"
    return (
        f"Machine: {len(os.sched_getaffinity(0))} CPUs ({cpu}), {gib:.0f} GiB RAM, "
        f"{platform.platform()}; Kubernetes {kube_version}, {server}, "
        f"{versions}, Python {platform.python_version()}. Date: {datetime.now(UTC):%Y-%m-%d}."
    )


def _proc_field(path: str, name: str) -> str:
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | measured | baseline (same run) | ratio / target |", "|---|---|---|---|"]
    lines += [f"| {r.benchmark} | {r.measured} | {r.baseline} | {r.ratio} |" for r in rows]
    return "\n".join(lines)
