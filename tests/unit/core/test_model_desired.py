"""Issue 29 item 11: a partition's desired state is looked up, not searched for in the spec's list."""

from __future__ import annotations

from typing import Any

from milvusops.core.model import CollectionSpec, Desired

NAMES = [f"t{index:04d}" for index in range(2_000)]


def spec_of(state: str, listed: list[tuple[str, str]]) -> CollectionSpec:
    partitions = [{"name": name, "state": want} for name, want in listed]
    return CollectionSpec.from_body({"metadata": {"name": "c"}, "spec": {"state": state, "partitions": partitions}})


def test_listed_partitions_take_their_state_the_others_the_spec_state() -> None:
    spec = spec_of("Released", [("hot", "Loaded"), ("cold", "Released")])
    assert [spec.desired_for(name) for name in ("hot", "cold", "other")] == [
        Desired.LOADED,
        Desired.RELEASED,
        Desired.RELEASED,
    ]
    assert spec_of("Loaded", [("cold", "Released")]).desired_for("other") == Desired.LOADED


def test_looking_up_every_partition_does_not_scan_the_spec_per_partition() -> None:
    spec = spec_of("Released", [(name, "Loaded") for name in NAMES])
    scans: list[int] = []

    class Watched(tuple[Any, ...]):
        def __iter__(self) -> Any:
            scans.append(1)
            return super().__iter__()

    object.__setattr__(spec, "partitions", Watched(spec.partitions))  # counts every walk of the list from now on
    desired = {name: spec.desired_for(name) for name in [*NAMES, "_default"]}
    assert len(scans) <= 1  # once at most, not once per partition (2,001 on a linear scan)
    assert desired == {**dict.fromkeys(NAMES, Desired.LOADED), "_default": Desired.RELEASED}
