"""bench.scenarios.memory's operator environment: another checkout's PYTHONPATH (--setting) survives tracemalloc."""

from __future__ import annotations

import os
from pathlib import Path

from bench.scenarios.memory import HOOK, operator_settings


def test_a_given_pythonpath_stays_behind_the_tracemalloc_hook(tmp_path: Path) -> None:
    settings = operator_settings(["PYTHONPATH=/before/operator", "MILVUSOPS_RESYNC_SECONDS=5"], 1, tmp_path)
    assert settings["PYTHONPATH"] == os.pathsep.join((str(HOOK), "/before/operator"))
    assert settings["MILVUSOPS_RESYNC_SECONDS"] == "5"
    assert settings["MILVUSOPS_BENCH_SNAPSHOTS"] == str(tmp_path)


def test_without_tracemalloc_the_environment_is_the_given_settings(tmp_path: Path) -> None:
    settings = operator_settings(["PYTHONPATH=/before/operator"], 0, tmp_path)
    assert settings["PYTHONPATH"] == "/before/operator"
    assert "MILVUSOPS_BENCH_SNAPSHOTS" not in settings
    assert settings["MILVUSOPS_MAX_CONCURRENT_CALLS"] == "8"


def test_the_hook_is_bench_memhook() -> None:
    assert (HOOK / "sitecustomize.py").is_file()
