"""bench.lib.profile_summary: py-spy's collapsed stacks charged to packages."""

from __future__ import annotations

from bench.lib.profile_summary import package, summarize

STACKS = [
    "<module> (/venv/lib/python3.11/site-packages/kopf/_core/reactor/running.py:100);"
    "handle (/venv/lib/python3.11/site-packages/aiohttp/client.py:50) 3",
    "_loop (/work/operator/milvusops/runtime/collection_worker.py:80);"
    "get_load_state (/venv/lib/python3.11/site-packages/pymilvus/client/grpc_handler.py:2147) 5",
    "_run (/usr/lib/python3.11/asyncio/events.py:84) 2",
    "not a sample line",
]


def test_frames_are_named_by_their_package() -> None:
    assert package("get (/venv/lib/python3.11/site-packages/pymilvus/x.py:1)") == "pymilvus"
    assert package("run (/usr/lib/python3.11/asyncio/base_events.py:10)") == "asyncio"
    assert package("main (/tmp/script.py:3)") == "other"
    assert package("dumps (json/__init__.py:231)") == "json"  # py-spy's shortened paths
    assert package("recv (ssl.py:1100)") == "ssl"


def test_samples_are_charged_to_the_innermost_package_and_to_every_package_on_the_stack() -> None:
    summary = summarize(STACKS)
    assert summary.samples == 10
    assert summary.own == {"aiohttp": 3, "pymilvus": 5, "asyncio": 2}
    assert summary.inclusive == {"kopf": 3, "aiohttp": 3, "milvusops": 5, "pymilvus": 5, "asyncio": 2}
    assert "| pymilvus | 50% | 50% |" in summary.table()
