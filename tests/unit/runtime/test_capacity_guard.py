"""Issue 29 item 11: the memory estimate reads the row counts it needs, not every partition's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from milvusops.core.capabilities import capabilities
from milvusops.core.model import CollectionSpec, LoadState, ResourceRef
from milvusops.core.observed import Observed, StateReport
from milvusops.core.plan import plan
from milvusops.core.status import stamp
from milvusops.runtime.capacity_guard import MemoryGuard, to_size
from milvusops.runtime.reconcile import reconcile
from tests.unit.fake_milvus import LOADED, NOT_LOAD, FakeMilvus, FakePorts

NOW = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)
TENANTS = [f"t{index:04d}" for index in range(999)]


def spec_loading(*names: str) -> CollectionSpec:
    listed = [{"name": name, "state": "Loaded"} for name in names]
    return CollectionSpec.from_body({"metadata": {"name": "c"}, "spec": {"partitions": listed}})


async def test_loading_one_more_tenant_reads_only_its_row_count() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD, **dict.fromkeys(TENANTS, NOT_LOAD), "t0001": LOADED})
    milvus.rows = dict.fromkeys(TENANTS, 100)
    ref = ResourceRef(namespace="shop", name="c", generation=1)
    first = await reconcile(spec_loading("t0001"), ref, {}, FakePorts(milvus), NOW, memory=MemoryGuard())
    assert milvus.sized == ["t0001"]  # in sync: only what is loaded needs an estimate in status
    previous = stamp(first.status, {}, NOW, observed_in_full=True, interval=30.0)
    milvus.sized.clear()
    changed = ref.model_copy(update={"generation": 2})
    result = await reconcile(
        spec_loading("t0001", "t0500"), changed, previous, FakePorts(milvus), NOW, memory=MemoryGuard()
    )
    assert [call[0] for call in milvus.mutating_calls] == ["load_partitions"]
    assert milvus.sized == ["t0500"]  # the partition about to load; t0001's estimate is in status
    sizes = {p["name"]: p.get("estimatedMemoryBytes") for p in result.status["partitions"]}
    assert sizes["t0001"] == sizes["t0500"] == 5_600  # 100 rows x 56 B, the kept one from status
    # t0500's load went in: it is Loading, and Loading counts as kept loaded
    assert result.status["memory"] == {"estimatedLoadedBytes": 11_200, "estimatedDesiredBytes": 11_200}


@pytest.mark.parametrize(
    ("states", "spec", "known", "every", "expected"),
    [
        ({"a": NOT_LOAD, "b": NOT_LOAD}, {"state": "Loaded"}, {"a": 1, "b": 1}, False, ["a", "b"]),  # load_collection
        ({"a": LOADED, "b": NOT_LOAD}, {"state": "Released"}, {}, False, ["a"]),  # a release: what status lacks
        ({"a": LOADED, "b": NOT_LOAD}, {"state": "Released"}, {"a": 1}, False, []),
        ({"a": LOADED, "b": NOT_LOAD}, {}, {"a": 1}, True, ["a", "b"]),  # a preview, or new replicas: all
    ],
)
def test_which_row_counts_are_read(
    states: dict[str, LoadState], spec: dict[str, str], known: dict[str, int], every: bool, expected: list[str]
) -> None:
    body = CollectionSpec.from_body({"metadata": {"name": "c"}, "spec": spec})
    observed = Observed(
        StateReport(LOADED if LOADED in states.values() else NOT_LOAD), {n: StateReport(s) for n, s in states.items()}
    )
    assert to_size(observed, plan(body, observed, capabilities("v2.3.5")), known, every) == expected
