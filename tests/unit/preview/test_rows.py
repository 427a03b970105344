"""`milvusops plan`, the pure part and the read-only guarantee: spec + in-memory Milvus -> rows -> text."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from milvusops.core.failures import Failure, Reason
from milvusops.core.model import CollectionSpec, LoadOptions, ResourceRef
from milvusops.core.observed import Replicas
from milvusops.core.status import Outcome
from milvusops.kube import manifests
from milvusops.preview import planview
from milvusops.preview.readonly import ReadOnlyPort, ReadOnlyPorts, ReadOnlyViolation, predict
from milvusops.preview.rows import (
    CHANGES,
    ERRORS,
    NOTHING,
    PartitionPreview,
    Report,
    ResourcePreview,
    exit_code,
    invalid,
    preview,
)
from milvusops.runtime.reconcile import assess
from tests.unit.fake_milvus import LOADED, LOADING, MUTATING, NOT_LOAD, FakeMilvus, FakePorts

REF = ResourceRef(namespace="shop", name="products")


def spec_of(state: str = "Released", partitions: dict[str, str] | None = None, **extra: Any) -> CollectionSpec:
    listed = [{"name": name, "state": want} for name, want in (partitions or {}).items()]
    return CollectionSpec.from_body(
        {"metadata": {"name": "products"}, "spec": {"state": state, "partitions": listed, **extra}}
    )


async def planned(milvus: FakeMilvus, spec: CollectionSpec, conflict_with: str | None = None) -> ResourcePreview:
    outcome, done = await assess(spec, REF, ReadOnlyPorts(FakePorts(milvus)), conflict_with, act=predict)
    assert done.actions == ()
    assert milvus.mutating_calls == []  # whatever the plan, nothing was changed
    return preview("m.yaml", spec, REF, "the default connection", outcome)


def rows(item: ResourcePreview) -> dict[str, tuple[str, str, str]]:
    return {p.name: (p.current, p.desired, p.change) for p in item.partitions}


@pytest.mark.parametrize(
    ("states", "spec", "calls", "reason", "partitions"),
    [
        (  # in sync: nothing to do
            {"_default": NOT_LOAD, "hot": LOADED},
            spec_of("Released", {"hot": "Loaded"}),
            (),
            "InSync",
            {"_default": ("NotLoad", "Released", ""), "hot": ("Loaded", "Loaded", "")},
        ),
        (  # one partition to load, one to release: releases first, as the operator does
            {"_default": NOT_LOAD, "hot": NOT_LOAD, "cold": LOADED},
            spec_of("Released", {"hot": "Loaded"}),
            ("release_partitions(cold)", "load_partitions(hot)"),
            "Releasing",
            {
                "_default": ("NotLoad", "Released", ""),
                "cold": ("Loaded", "Released", "release"),
                "hot": ("NotLoad", "Loaded", "load"),
            },
        ),
        (  # every partition Loaded: one collection-level load
            {"_default": NOT_LOAD, "a": NOT_LOAD},
            spec_of("Loaded"),
            ("load_collection",),
            "Loading",
            {"_default": ("NotLoad", "Loaded", "load"), "a": ("NotLoad", "Loaded", "load")},
        ),
        (  # nothing wanted: release the collection
            {"_default": LOADED, "a": LOADING},
            spec_of("Released"),
            ("release_collection",),
            "Releasing",
            {"_default": ("Loaded", "Released", "release"), "a": ("Loading", "Released", "release")},
        ),
        (  # a partition named in spec that Milvus lacks
            {"_default": NOT_LOAD},
            spec_of("Released", {"ghost": "Loaded"}),
            (),
            "PartitionNotFound",
            {"_default": ("NotLoad", "Released", ""), "ghost": ("NotExist", "Loaded", "")},
        ),
        (  # Observe: reported, never acted on
            {"_default": NOT_LOAD},
            spec_of("Loaded", managementPolicy="Observe"),
            (),
            "Observing",
            {"_default": ("NotLoad", "Loaded", "")},
        ),
    ],
)
async def test_rows_calls_and_reason_come_from_the_operators_plan(
    states: dict[str, Any], spec: CollectionSpec, calls: tuple[str, ...], reason: str, partitions: dict[str, Any]
) -> None:
    milvus = FakeMilvus(states)
    milvus.rows = dict.fromkeys(states, 1000)
    item = await planned(milvus, spec)
    assert (item.calls, item.reason, rows(item)) == (calls, reason, partitions)
    # the fake's schema (INT64 id, FLOAT_VECTOR dim 8, FLAT): 16 + 8 + 32 bytes a row
    per_change = {"load": 56_000, "release": -56_000, "": 0}
    expected = {name: per_change[change] for name, (_, _, change) in partitions.items()}
    assert {p.name: p.memory_bytes for p in item.partitions} == expected
    assert item.memory_bytes == sum(expected.values())


async def test_missing_collection_is_an_error_with_the_operators_reason() -> None:
    item = await planned(FakeMilvus(None), spec_of("Loaded", {"a": "Loaded"}))
    assert (item.reason, item.status, item.calls) == ("CollectionNotFound", "error", ())
    assert rows(item) == {"a": ("NotExist", "Loaded", "")}


async def test_a_load_without_a_vector_index_is_predicted_as_index_not_found() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD})
    milvus.unindexed = ["vector"]
    item = await planned(milvus, spec_of("Loaded"))
    assert (item.reason, item.status, item.calls) == ("IndexNotFound", "error", ("load_collection",))
    assert "vector" in item.message


async def test_no_index_is_asked_when_nothing_loads() -> None:
    milvus = FakeMilvus({"_default": LOADED})
    milvus.unindexed = ["vector"]
    item = await planned(milvus, spec_of("Released"))
    assert item.reason == "Releasing"
    assert "unindexed_vector_fields" not in [call[0] for call in milvus.calls]


async def test_a_replica_change_of_loaded_partitions_is_refused_like_the_operator_does() -> None:
    milvus = FakeMilvus({"_default": LOADED})
    item = await planned(milvus, spec_of("Loaded", load={"replicas": 2}))
    assert (item.reason, item.calls) == ("InvalidLoadOptions", ())
    assert "release them first" in item.message


async def test_the_younger_of_two_manifests_for_one_collection_is_a_conflict() -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD})
    item = await planned(milvus, spec_of("Loaded"), conflict_with="shop/older")
    assert (item.reason, item.status, item.calls) == ("Conflict", "error", ())
    assert milvus.calls == []  # like the operator: a losing resource makes no Milvus call at all


WRITES: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    "load_collection": ("load_collection", ("c", LoadOptions()), {}),
    "load_partitions": ("load_partitions", ("c", ["_default"], LoadOptions()), {}),
    "release_collection": ("release_collection", ("c",), {}),
    "release_partitions": ("release_partitions", ("c", ["_default"]), {}),
    "refresh_collection": ("load_collection", ("c", LoadOptions()), {"refresh": True}),
    "refresh_partitions": ("load_partitions", ("c", ["_default"], LoadOptions()), {"refresh": True}),
}


@pytest.mark.parametrize("write", sorted(MUTATING))
async def test_the_read_only_port_refuses_every_mutation_before_it_reaches_milvus(write: str) -> None:
    milvus = FakeMilvus({"_default": NOT_LOAD})
    port = ReadOnlyPort(milvus)
    method, arguments, options = WRITES[write]  # every call the fake counts as a change of Milvus
    with pytest.raises(ReadOnlyViolation):
        await getattr(port, method)(*arguments, **options)
    assert milvus.calls == []


async def test_the_read_only_port_passes_reads_through() -> None:
    milvus = FakeMilvus({"_default": LOADED})
    port = ReadOnlyPort(milvus)
    assert (await port.load_state("c", "_default")).state == LOADED
    assert await port.list_partitions("c") == ["_default"]
    assert (await port.replicas("c")) == Replicas(1, ("__default_resource_group",))
    assert await port.version() == "v2.3.5"
    assert (await port.describe("c")).id == milvus.id


@pytest.mark.parametrize(
    ("previews", "code"),
    [
        ([], NOTHING),
        ([ResourcePreview("a", "n", "a", reason="InSync")], NOTHING),
        ([ResourcePreview("a", "n", "a", calls=("load_collection",))], CHANGES),
        ([ResourcePreview("a", "n", "a", calls=("load_collection",)), invalid("b", "n", "b", ["x"])], ERRORS),
        ([ResourcePreview("a", "n", "a", reason="MilvusUnavailable", failed=True)], ERRORS),
    ],
)
def test_exit_codes_like_terraform_detailed_exitcode(previews: list[ResourcePreview], code: int) -> None:
    assert exit_code(previews) == code


SAMPLE = [
    ResourcePreview(
        "m.yaml",
        "shop",
        "products",
        "default.products",
        "the default connection",
        calls=("load_partitions(hot)",),
        reason="Loading",
        message="loading: hot",
        partitions=(
            PartitionPreview("_default", "NotLoad", "Released", ""),
            PartitionPreview("hot", "NotLoad", "Loaded", "load"),
        ),
    ),
    invalid("bad.yaml", "shop", "bad", ['spec.state: Unsupported value: "x": supported values: "Loaded", "Released"']),
]


def test_table_lists_partitions_calls_reason_and_unestimated_memory() -> None:
    text = planview.table(Report(SAMPLE))
    assert "shop/products (m.yaml): change" in text
    assert text.splitlines()[2].split() == ["PARTITION", "CURRENT", "DESIRED", "CHANGE", "MEMORY"]
    assert text.splitlines()[4].split() == ["hot", "NotLoad", "Loaded", "load", "n/a"]
    assert "  calls:  load_partitions(hot)" in text and "  reason: Loading: loading: hot" in text
    assert '  invalid: spec.state: Unsupported value: "x"' in text
    assert text.endswith("2 MilvusCollection(s): 1 to change, 1 with errors, 0 unchanged\n")


def test_json_has_a_summary_and_null_memory() -> None:
    document = json.loads(planview.as_json(Report(SAMPLE)))
    assert document["schemaVersion"] == planview.SCHEMA_VERSION and document["skipped"] == []
    assert document["summary"] == {"resources": 2, "change": 1, "error": 1, "noChange": 0, "skipped": 0, "exitCode": 1}
    first = document["resources"][0]
    assert (first["status"], first["calls"], first["memoryBytes"]) == ("change", ["load_partitions(hot)"], None)
    assert first["partitions"][1] == {
        "name": "hot",
        "current": "NotLoad",
        "desired": "Loaded",
        "change": "load",
        "memoryBytes": None,
    }


def test_markdown_is_a_pull_request_comment() -> None:
    text = planview.markdown(Report(SAMPLE))
    assert text.startswith("### milvusops plan: 2 MilvusCollection(s): 1 to change, 1 with errors, 0 unchanged\n")
    assert "| `hot` | NotLoad | Loaded | **load** | n/a |" in text
    assert "Calls: `load_partitions(hot)`" in text
    assert '- `spec.state: Unsupported value: "x": supported values: "Loaded", "Released"`' in text


def test_manifests_from_files_directories_stdin_and_lists(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text("kind: MilvusCollection\nmetadata: {name: a}\n---\nkind: ConfigMap\n---\n")
    (tmp_path / "b.json").write_text(
        '{"kind": "List", "items": [{"kind": "MilvusCollection", "metadata": {"name": "b"}}]}'
    )
    (tmp_path / "notes.txt").write_text("not a manifest")
    found = manifests.read([str(tmp_path), "-"], io.StringIO("kind: MilvusCollection\nmetadata: {name: c}\n"))
    assert [(Path(m.source).name, (m.body.get("metadata") or {}).get("name")) for m in found.manifests] == [
        ("b.json", "b"),
        ("a.yaml#1", "a"),
        ("a.yaml#2", None),
        ("<stdin>", "c"),
    ]
    assert found.unusable == []


@pytest.mark.parametrize(
    ("text", "reason", "error"),
    [
        ("a: [", "not valid YAML", True),  # may hide a manifest: the plan fails
        ("kind: {{ .Values.kind }}\n", "not valid YAML (a template? render it first", True),
        ("a: 1\na: 2\n", "duplicate key 'a'", True),  # the API server refuses it; YAML would keep the last
        ("- op: replace\n  path: /spec/state\n", "not a Kubernetes object (a list: a JSON patch?)", False),
    ],
)
def test_unusable_input_is_reported_and_the_rest_still_read(
    tmp_path: Path, text: str, reason: str, error: bool
) -> None:
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text("kind: MilvusCollection\n")
    found = manifests.read([str(tmp_path)])
    [unusable] = found.unusable
    assert reason in unusable.reason and unusable.error == error
    assert [m.body for m in found.manifests] == [{"kind": "MilvusCollection"}]


def test_a_missing_path_is_an_error() -> None:
    with pytest.raises(manifests.ManifestError, match="no such file"):
        manifests.read(["/nonexistent/plan"])


def test_failure_outcome_without_observation_keeps_the_named_partitions_unknown() -> None:
    failure = Failure(Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus")
    item = preview("m.yaml", spec_of("Released", {"hot": "Loaded"}), REF, "c", Outcome(failure=failure))
    assert (item.status, rows(item)) == ("error", {"hot": ("Unknown", "Loaded", "")})


@pytest.mark.parametrize(
    ("states", "spec", "marks"),
    [
        (  # releasing a loaded partition takes it out of search
            {"_default": NOT_LOAD, "hot": NOT_LOAD, "cold": LOADED},
            spec_of("Released", {"hot": "Loaded"}),
            ("releases loaded partition(s) cold",),
        ),
        ({"_default": LOADED, "a": LOADING}, spec_of("Released"), ("releases the whole collection",)),
        ({"_default": NOT_LOAD, "a": NOT_LOAD}, spec_of("Loaded"), ()),  # loading only: nothing is lost
        ({"_default": NOT_LOAD, "cold": NOT_LOAD}, spec_of("Released", {"cold": "Released"}), ()),  # already so
    ],
)
async def test_destructive_changes_are_marked(
    states: dict[str, Any], spec: CollectionSpec, marks: tuple[str, ...]
) -> None:
    milvus = FakeMilvus(states)
    item = await planned(milvus, spec)
    assert item.destructive == marks
    document = json.loads(planview.as_json(Report([item])))
    assert document["resources"][0]["destructive"] == list(marks)
    assert ("destructive:" in planview.table(Report([item]))) == bool(marks)


def test_fewer_replicas_is_destructive() -> None:
    from milvusops.core.model import Desired
    from milvusops.core.plan import LoadCollection, Plan, destructive_marks

    shrink = Plan({"_default": Desired.LOADED}, (), (LoadCollection(),), replica_change=(3, 1))
    grow = Plan({"_default": Desired.LOADED}, (), (LoadCollection(),), replica_change=(1, 3))
    assert destructive_marks(shrink, None) == ("replicas 3 -> 1",)
    assert destructive_marks(grow, None) == ()


def test_fail_on_destructive_turns_changes_into_an_error() -> None:
    releasing = ResourcePreview("m.yaml", "shop", "products", calls=("release_collection",), destructive=("x",))
    loading = ResourcePreview("m.yaml", "shop", "other", calls=("load_collection",))
    assert Report([releasing, loading]).exit_code == CHANGES
    assert Report([releasing, loading], fail_on_destructive=True).exit_code == ERRORS
    assert Report([loading], fail_on_destructive=True).exit_code == CHANGES
