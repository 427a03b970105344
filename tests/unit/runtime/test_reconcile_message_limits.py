"""Issue 29 item 4: a status with thousands of long partition names still fits the CRD's schema."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from milvusops.core.failures import Reason
from milvusops.core.memory_estimate import Capacity, NodeMemory, admit
from milvusops.core.messages import LISTED_CHARS, clipped, listing
from milvusops.core.model import CollectionSpec, ResourceRef
from milvusops.runtime.reconcile import Result, reconcile
from tests.unit.fake_milvus import NOT_LOAD, FakeMilvus, FakePorts

CRD = Path(__file__).parents[3] / "crds" / "milvuscollections.milvusops.dev.yaml"
NOW = datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)
REF = ResourceRef(namespace="shop", name="products", generation=1)


def status_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    version = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(version["properties"]["status"])


def spec_limits() -> tuple[int, int]:
    """spec.partitions: how many the API server admits, and how long each name may be."""
    crd = yaml.safe_load(CRD.read_text())
    listed = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["partitions"]
    return int(listed["maxItems"]), int(listed["items"]["properties"]["name"]["maxLength"])


def violations(schema: dict[str, Any], value: Any, path: str = "status") -> list[str]:
    """What the API server's structural schema would refuse for maxLength and maxItems (422)."""
    found: list[str] = []
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        found.append(f"{path}: {len(value)} characters > {schema['maxLength']}")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            found.append(f"{path}: {len(value)} items > {schema['maxItems']}")
        for index, item in enumerate(value):
            found += violations(schema.get("items", {}), item, f"{path}[{index}]")
    if isinstance(value, dict):
        for key, item in value.items():
            found += violations(schema.get("properties", {}).get(key, {}), item, f"{path}.{key}")
    return found


def longest_partitions() -> list[str]:
    count, length = spec_limits()
    return [f"p{index:04d}_".ljust(length, "x") for index in range(count)]


async def run(milvus: FakeMilvus, spec: CollectionSpec) -> Result:
    return await reconcile(spec, REF, {}, FakePorts(milvus), NOW)


def make_spec(names: list[str]) -> CollectionSpec:
    listed = [{"name": name, "state": "Loaded"} for name in names]
    return CollectionSpec.from_body({"metadata": {"name": "products"}, "spec": {"partitions": listed}})


async def test_every_partition_missing_still_writes_a_status_within_the_schema() -> None:
    names = longest_partitions()
    result = await run(FakeMilvus({"_default": NOT_LOAD}), make_spec(names))
    assert result.verdict.reason == Reason.PARTITION_NOT_FOUND
    assert violations(status_schema(), result.status) == []
    message = result.verdict.message
    assert names[0] in message and f"and {len(names) - message.count(', ') - 1} more" in message


async def test_loading_thousands_of_long_partitions_still_writes_a_status_within_the_schema() -> None:
    names = longest_partitions()
    milvus = FakeMilvus(dict.fromkeys(["_default", *names], NOT_LOAD))
    result = await run(milvus, make_spec(names))
    assert result.verdict.reason == Reason.LOADING
    assert violations(status_schema(), result.status) == []
    assert all(len(event.message) <= 1024 for event in result.events)  # Kopf cuts longer ones mid-name


@pytest.mark.parametrize(
    ("names", "budget", "expected"),
    [
        ([], 100, ""),
        (["b", "a"], 100, "a, b"),  # sorted: the same set always reads the same (no status churn)
        (["ccc", "bbb", "aaa"], 8, "aaa, bbb and 1 more"),
        (["ccc", "bbb", "aaa"], 2, "aaa and 2 more"),  # at least one name, whatever the budget
    ],
)
def test_listing_caps_names_with_and_n_more(names: list[str], budget: int, expected: str) -> None:
    assert listing(names, budget) == expected


def test_free_text_is_clipped_and_says_so() -> None:
    assert clipped("short", 10) == "short"
    assert clipped("x" * 50, 20) == "x" * 14 + " [...]"


def test_a_memory_refusal_naming_thousands_of_loaded_partitions_stays_readable() -> None:
    """The refusal names what could be released: with 4,096 long partition names, a few and 'and N more'."""
    full = Capacity((NodeMemory(1, 2**30, 2**30),))
    kept = tuple(f"{'p' * 240}{index:05d} (1.0 MiB)" for index in range(4096))
    refusal = admit(2**20, full, 10.0, releasable=kept)
    assert refusal is not None
    assert len(refusal.message) <= 2 * LISTED_CHARS
    assert "and 40" in refusal.message  # how many more there are
