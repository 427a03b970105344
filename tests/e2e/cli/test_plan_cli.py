"""`milvusops plan` as a user runs it: a process against the real Milvus and API server, changing nothing.

Collections are made once for the module. Whether plan changed anything is read from Milvus itself
right after plan exits: a release is done when its call returns, and a load started with `_async=True`
already shows as Loading (or Loaded) then, so any call plan made would be visible at that moment.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import Kube, load_states, new_collection
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer

GOLDEN = Path(__file__).parent / "golden"


class Collections:
    def __init__(self, milvus: MilvusServer) -> None:
        self.loaded = new_collection(milvus, ["hot", "cold"], rows=20)  # hot Loaded, cold not
        self.fresh = new_collection(milvus, ["a"], rows=20)  # nothing loaded
        self.unindexed = new_collection(milvus, ["a"], index=False, rows=20)
        self.whole = new_collection(milvus, [], rows=20)  # loaded whole, one replica
        client = milvus.client()
        try:
            client.load_partitions(self.loaded, ["hot"])
            client.load_collection(self.whole, replica_number=1)
        finally:
            client.close()

    def states(self, milvus: MilvusServer) -> dict[str, dict[str, str]]:
        return {name: load_states(milvus, name) for name in (self.loaded, self.fresh, self.unindexed, self.whole)}


@pytest.fixture(scope="module")
def collections(milvus: MilvusServer) -> Iterator[Collections]:
    yield Collections(milvus)


def collection(name: str, collection_name: str, spec: str, namespace: str = "shop") -> str:
    return textwrap.dedent(f"""\
        apiVersion: milvusops.dev/v1alpha1
        kind: MilvusCollection
        metadata: {{name: {name}, namespace: {namespace}}}
        spec: {{collectionName: {collection_name}, {spec}}}
        ---
        """)


def plan(
    milvus: MilvusServer, cwd: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MILVUSOPS_", "KUBECONFIG"))},
        "MILVUSOPS_DEFAULT_URI": milvus.uri,
        "MILVUSOPS_DEFAULT_TOKEN": milvus.root_token,
        "HOME": str(cwd),  # no ~/.kube/config: a cluster only where the test gives one
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "milvusops", "plan", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def normalised(text: str, collections: Collections, milvus: MilvusServer) -> str:
    named = (("LOADED", collections.loaded), ("FRESH", collections.fresh), ("WHOLE", collections.whole))
    for placeholder, name in named:
        text = text.replace(name, placeholder)
    text = text.replace(collections.unindexed, "UNINDEXED").replace(milvus.uri, "http://milvus:19530")
    return re.sub(r"c_[0-9a-f]{10}", "c_RANDOM", text)


def test_in_sync_manifests_exit_0(milvus: MilvusServer, collections: Collections, tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        collection("catalog", collections.loaded, "partitions: [{name: hot, state: Loaded}]")
        + collection("fresh", collections.fresh, "state: Released")
        + "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: skipped}\n"
    )
    before = collections.states(milvus)
    result = plan(milvus, tmp_path, "m.yaml", "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["summary"] == {"resources": 2, "change": 0, "error": 0, "noChange": 2, "skipped": 1, "exitCode": 0}
    assert document["skipped"] == [{"source": "m.yaml#3", "reason": "ConfigMap v1: not planned"}]
    assert [r["reason"] for r in document["resources"]] == ["InSync", "InSync"]
    assert collections.states(milvus) == before


def test_changes_exit_2_and_change_nothing_in_milvus(
    milvus: MilvusServer, collections: Collections, tmp_path: Path
) -> None:
    stdin = collection(
        "catalog", collections.loaded, "partitions: [{name: hot, state: Released}, {name: cold, state: Loaded}]"
    ) + collection("fresh", collections.fresh, "state: Loaded")
    before = collections.states(milvus)
    result = plan(milvus, tmp_path, "-", "-o", "json", stdin=stdin)
    after = collections.states(milvus)
    assert result.returncode == 2, result.stdout + result.stderr
    assert after == before  # nothing loaded or released by plan
    assert before[collections.loaded] == {"_default": "NotLoad", "hot": "Loaded", "cold": "NotLoad"}
    catalog, fresh = json.loads(result.stdout)["resources"]
    assert catalog["calls"] == ["release_partitions(hot)", "load_partitions(cold)"]
    # no spec.state: _default is not the spec's to change, so not listed
    assert {p["name"]: p["change"] for p in catalog["partitions"]} == {"cold": "load", "hot": "release"}
    assert catalog["destructive"] == ["releases loaded partition(s) hot"] and fresh["destructive"] == []
    assert (fresh["calls"], fresh["reason"]) == (["load_collection"], "Loading")
    # 200 rows of an INT64 id and an 8-dim FLAT vector (56 B a row, docs/design/capacity.md) per partition, if Milvus
    # counts them: + for what is loaded, - for what is released, 0 for what stays
    memory = {p["name"]: p["memoryBytes"] for p in catalog["partitions"]}
    assert memory["cold"] == -memory["hot"] >= 0
    assert catalog["memoryBytes"] == 0 and fresh["memoryBytes"] == sum(p["memoryBytes"] for p in fresh["partitions"])


def alias(name: str, alias_name: str, target: str, namespace: str = "shop") -> str:
    return textwrap.dedent(f"""\
        apiVersion: milvusops.dev/v1alpha1
        kind: MilvusAlias
        metadata: {{name: {name}, namespace: {namespace}}}
        spec: {{alias: {alias_name}, target: {target}, releasePrevious: {{afterSeconds: 60}}}}
        ---
        """)


def test_alias_switches_are_previewed_and_nothing_moves(
    milvus: MilvusServer, collections: Collections, tmp_path: Path
) -> None:
    """One alias would switch now (its target InSync and Loaded) and release what it leaves; one waits for a load."""
    ready, waiting = f"a_{uuid.uuid4().hex[:8]}", f"a_{uuid.uuid4().hex[:8]}"
    client = milvus.client()
    try:
        client.create_alias(collections.loaded, ready)
        client.create_alias(collections.whole, waiting)  # not on `loaded`: it would keep it from release
        (tmp_path / "m.yaml").write_text(
            collection("whole", collections.whole, "state: Loaded")
            + collection("fresh", collections.fresh, "state: Loaded")
            + alias("ready", ready, "{collectionRef: {name: whole}}")
            + alias("waiting", waiting, "{collectionRef: {name: fresh}}")
        )
        before = collections.states(milvus)
        result = plan(milvus, tmp_path, "m.yaml", "-o", "json")
        assert result.returncode == 2, result.stdout + result.stderr
        _, _, switch, wait = json.loads(result.stdout)["resources"]
        assert switch["alias"]["switch"] == "now" and switch["calls"][0] == f"alter_alias({collections.whole}, {ready})"
        assert switch["destructive"] == [
            f"releases the whole collection {collections.loaded} (after the 60 s drain window)"
        ]
        assert (wait["alias"]["switch"], wait["calls"]) == ("waits (TargetNotReady)", [])
        assert "planned load_collection" in wait["message"]
        gate = plan(milvus, tmp_path, "m.yaml", "--fail-on-destructive")
        assert gate.returncode == 1 and "destructive: releases the whole collection" in gate.stdout
        assert collections.states(milvus) == before  # nothing loaded or released
        pointing = [client.describe_alias(a)["collection_name"] for a in (ready, waiting)]
        assert pointing == [collections.loaded, collections.whole]
    finally:
        for name in (ready, waiting):
            client.drop_alias(name)
        client.close()


def test_errors_exit_1_with_the_api_servers_messages(
    milvus: MilvusServer, collections: Collections, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    invalid = collection("bad", "x", "state: Unloaded, load: {replicas: 0}", namespace)
    cel = textwrap.dedent(f"""\
        apiVersion: milvusops.dev/v1alpha1
        kind: MilvusCollection
        metadata: {{name: my-products, namespace: {namespace}}}
        spec: {{state: Loaded}}
        """)
    manifests = [invalid, cel]
    result = plan(milvus, tmp_path, "-", "-o", "json", stdin="".join(manifests))
    assert result.returncode == 1, result.stdout + result.stderr
    resources = json.loads(result.stdout)["resources"]
    for manifest, resource in zip(manifests, resources, strict=True):
        server = control_plane.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)
        assert server.returncode != 0
        assert set(resource["errors"]) == _server_errors(server.stderr)


def _server_errors(stderr: str) -> set[str]:
    """The field errors in kubectl's report of a refused object, without the 'rules not checked' note."""
    body = stderr.split(" is invalid: ", 1)[1].strip()
    lines = [line.removeprefix("* ") for line in body.splitlines()] if body.startswith("[") is False else []
    if body.startswith("["):
        lines = body.strip("[]").split(", spec.")  # one line: [a, b]
        lines = [lines[0]] + [f"spec.{line}" for line in lines[1:]]
    return {line.strip() for line in lines if line.strip() and not line.startswith("<nil>")}


def test_reasons_and_markdown_match_the_golden_file(
    milvus: MilvusServer, collections: Collections, tmp_path: Path
) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "catalog.yaml").write_text(
        collection(
            "catalog", collections.loaded, "partitions: [{name: hot, state: Released}, {name: cold, state: Loaded}]"
        )
        + collection("fresh-a", collections.fresh, "state: Loaded")
        + collection("fresh-b", collections.fresh, "state: Released")  # same collection, later by name: Conflict
    )
    (tmp_path / "manifests" / "more.yaml").write_text(
        collection("unindexed", collections.unindexed, "state: Loaded")
        + collection("ghost", "c_0000000000", "state: Loaded")
        + collection("replicas", collections.whole, "state: Loaded, load: {replicas: 2}")
        + collection("bad", "x", "state: Unloaded")
    )
    before = collections.states(milvus)
    result = plan(milvus, tmp_path, "manifests", "-o", "markdown")
    assert collections.states(milvus) == before
    assert result.returncode == 1, result.stdout + result.stderr
    text = normalised(result.stdout, collections, milvus)
    for reason in ("Releasing", "Conflict", "IndexNotFound", "CollectionNotFound", "InvalidLoadOptions"):
        assert f"Reason: `{reason}`" in text
    golden = GOLDEN / "plan.md"
    if text != golden.read_text():
        actual = tmp_path / "plan.md"
        actual.write_text(text)
        raise AssertionError(f"plan output changed; if on purpose: cp {actual} {golden}\n{text}")


def test_live_reads_the_clusters_collections_and_their_connection(
    milvus: MilvusServer,
    collections: Collections,
    kube: Kube,
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
) -> None:
    kube.create_secret(namespace, "milvus-token", {"token": milvus.root_token})
    kube.create_connection(namespace, "main", {"uri": milvus.uri, "credentialsSecretRef": {"name": "milvus-token"}})
    kube.create(
        namespace, "fresh", {"collectionName": collections.fresh, "state": "Loaded", "connectionRef": {"name": "main"}}
    )
    kube.create(
        namespace, "catalog", {"collectionName": collections.loaded, "partitions": [{"name": "hot", "state": "Loaded"}]}
    )
    before = collections.states(milvus)
    result = plan(
        milvus,
        tmp_path,
        "--live",
        "-n",
        namespace,
        "--kubeconfig",
        str(control_plane.kubeconfig),
        "-o",
        "json",
        env={"MILVUSOPS_DEFAULT_TOKEN": "nobody:not-the-password"},  # the connection's own Secret must be what is used
    )
    assert collections.states(milvus) == before
    document = json.loads(result.stdout)
    by_name = {r["name"]: r for r in document["resources"]}
    assert result.returncode == 1, result.stdout + result.stderr  # catalog uses the default connection, bad token
    assert (by_name["fresh"]["calls"], by_name["fresh"]["connection"]) == (
        ["load_collection"],
        f"MilvusConnection {namespace}/main",
    )
    assert by_name["catalog"]["status"] == "error"
    assert "not-the-password" not in result.stdout  # no secret in the output (the user name is shown)


def test_no_paths_and_no_live_is_an_error(milvus: MilvusServer, tmp_path: Path) -> None:
    result = plan(milvus, tmp_path)
    assert result.returncode == 1 and "give manifest paths" in result.stderr


def test_a_change_that_only_deletes_manifests_plans_the_releases(
    milvus: MilvusServer, collections: Collections, tmp_path: Path
) -> None:
    """--base: a MilvusCollection gone from the manifests is planned as its deletionPolicy would act."""
    (tmp_path / "base").mkdir()
    (tmp_path / "new").mkdir()
    kept = collection("catalog-kept", collections.fresh, "state: Loaded")
    (tmp_path / "base" / "m.yaml").write_text(
        kept
        + collection("catalog", collections.loaded, "partitions: [{name: hot, state: Loaded}], deletionPolicy: Release")
        + collection("whole", collections.whole, "state: Loaded")  # Retain (the default)
    )
    (tmp_path / "new" / "m.yaml").write_text(kept)
    before = collections.states(milvus)
    result = plan(milvus, tmp_path, "new", "--base", "base", "-o", "json", "--fail-on-destructive")
    assert collections.states(milvus) == before
    assert result.returncode == 1, result.stdout + result.stderr  # a release of a serving partition, flagged
    by_name = {r["name"]: r for r in json.loads(result.stdout)["resources"]}
    # hot is all Milvus holds of it, and it was the resource's: released as a whole, as the finalizer does
    assert (by_name["catalog"]["calls"], by_name["catalog"]["destructive"]) == (
        ["release_collection"],
        ["releases the whole collection"],
    )
    assert [(p["name"], p["change"]) for p in by_name["catalog"]["partitions"]] == [("hot", "release")]
    assert (by_name["whole"]["calls"], by_name["whole"]["reason"]) == ([], "Deleted")
    assert by_name["catalog-kept"]["calls"] == ["load_collection"]
    only_deletions = plan(milvus, tmp_path, "--base", "base", "-o", "json")  # nothing left at all
    assert only_deletions.returncode == 2, only_deletions.stdout + only_deletions.stderr


JOB_BASE = "/tmp/base"  # noqa: S108 - where docs/plan.md's job checks out the target branch


def _job_script() -> str:
    """The `run:` block of docs/plan.md's GitHub Actions job, as the docs give it."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "plan.md").read_text()
    job = text[text.index("name: milvusops plan\non:") :]
    block = job[job.index("        run: |\n") + len("        run: |\n") :]
    lines = []
    for line in block.splitlines():
        if not line.startswith("          "):
            break
        lines.append(line[10:])
    return "\n".join(lines) + "\n"


def test_the_documented_job_runs_as_written(milvus: MilvusServer, collections: Collections, tmp_path: Path) -> None:
    """docs/plan.md's job in a repository whose pull request deletes a manifest: it passes (exit 0 or 2), and its
    Markdown plans the deletion; a broken manifest makes it fail."""
    origin, clone = tmp_path / "origin", tmp_path / "clone"
    folder = origin / "clusters" / "prod" / "milvus"
    folder.mkdir(parents=True)
    (folder / "kept.yaml").write_text(collection("kept", collections.fresh, "state: Released"))
    (folder / "gone.yaml").write_text(collection("gone", collections.whole, "state: Loaded"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for argv in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "base"]):
        subprocess.run([*git, *argv], cwd=origin, check=True)
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    (clone / "clusters" / "prod" / "milvus" / "gone.yaml").unlink()
    script = _job_script().replace("${{ github.base_ref }}", "main")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MILVUSOPS_", "KUBECONFIG"))},
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # milvusops as `pip install` puts it
        "HOME": str(tmp_path),
        "GITHUB_ENV": str(tmp_path / "github_env"),
        "MILVUSOPS_DEFAULT_URI": milvus.uri,
        "MILVUSOPS_DEFAULT_TOKEN": milvus.root_token,
    }
    shutil.rmtree(JOB_BASE, ignore_errors=True)
    try:
        job = subprocess.run(["bash", "-e", "-c", script], cwd=clone, env=environment, capture_output=True, text=True)
        assert job.returncode == 0, job.stdout + job.stderr
        report = (clone / "plan.md").read_text()
        assert "`shop/gone`" in report and "deletionPolicy Retain" in report and "`shop/kept`" in report
        assert (tmp_path / "github_env").read_text() == "code=0\n"  # nothing to change in Milvus

        subprocess.run(["git", "worktree", "remove", "--force", JOB_BASE], cwd=clone, check=True)
        (clone / "clusters" / "prod" / "milvus" / "kept.yaml").write_text("kind: [")
        job = subprocess.run(["bash", "-e", "-c", script], cwd=clone, env=environment, capture_output=True, text=True)
        assert job.returncode == 1, job.stdout + job.stderr
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", JOB_BASE], cwd=clone, check=False)
        shutil.rmtree(JOB_BASE, ignore_errors=True)


def test_a_connection_in_the_input_is_used(
    milvus: MilvusServer,
    collections: Collections,
    kube: Kube,
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
) -> None:
    """A MilvusCollection and its MilvusConnection in one change: the connection comes from the input (it is not
    in the cluster yet), its Secret from the cluster."""
    kube.create_secret(namespace, "milvus-token", {"token": milvus.root_token})
    connection = textwrap.dedent(f"""\
        apiVersion: milvusops.dev/v1alpha1
        kind: MilvusConnection
        metadata: {{name: fresh-main, namespace: {namespace}}}
        spec: {{uri: '{milvus.uri}', credentialsSecretRef: {{name: milvus-token}}}}
        ---
        """)
    spec = "state: Loaded, connectionRef: {name: fresh-main}"
    (tmp_path / "m.yaml").write_text(connection + collection("fresh", collections.fresh, spec, namespace=namespace))
    result = plan(
        milvus,
        tmp_path,
        "m.yaml",
        "--kubeconfig",
        str(control_plane.kubeconfig),
        "-o",
        "json",
        env={"MILVUSOPS_DEFAULT_TOKEN": "nobody:wrong"},  # not the default connection
    )
    assert result.returncode == 2, result.stdout + result.stderr
    document = json.loads(result.stdout)
    [fresh] = document["resources"]
    assert (fresh["calls"], fresh["connection"]) == (["load_collection"], f"MilvusConnection {namespace}/fresh-main")
    assert document["skipped"][0]["reason"] == "MilvusConnection milvusops.dev/v1alpha1: used, not planned"
