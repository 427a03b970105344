"""`make demo`: a local control plane + Milvus + the operator, the examples applied, status printed."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from pymilvus import DataType, MilvusClient

from . import gobins
from .kube import ControlPlane
from .milvus import MilvusServer
from .processes import Process, Session, free_port

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "demo"
# the collections that examples/ refer to, with their partitions
EXAMPLE_COLLECTIONS: dict[str, list[str]] = {
    "products": ["books", "music"],
    "catalog": ["recent", "archive"],
    "documents": [],
    "articles": ["drafts"],
    "reports": [],
    "products_v2": [],  # the blue-green example's new collection
}


def create_example_collections(client: MilvusClient, rows: int = 1000) -> None:
    """Indexed collections with a few rows per partition, recreated from scratch."""
    for name, partitions in EXAMPLE_COLLECTIONS.items():
        if client.has_collection(name):
            client.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=16)
        client.create_collection(name, schema=schema)
        for partition in ["_default", *partitions]:
            if partition != "_default":
                client.create_partition(name, partition)
            data = [{"vector": [float((i * 7 + j) % 13) for j in range(16)]} for i in range(rows)]
            client.insert(name, data, partition_name=partition)
        params = MilvusClient.prepare_index_params()
        params.add_index("vector", index_type="FLAT", metric_type="L2")
        client.create_index(name, params)


# load one partition and leave the others as they are: server-side apply merges spec.partitions by
# name (list-type map), where a merge patch would replace the whole list
LOAD_ONE_PARTITION = f"""\
apiVersion: milvusops.dev/v1alpha1
kind: MilvusCollection
metadata: {{name: catalog, namespace: {NAMESPACE}}}
spec:
  partitions:
    - {{name: archive, state: Loaded}}
"""
# --force-conflicts: archive's state was set by the examples' apply, and this manager takes it over
LOAD_ONE_PARTITION_ARGS = ("apply", "--server-side", "--field-manager=demo-user", "--force-conflicts", "-f", "-")
# server-side too: kubectl hands every field a client-side apply set to the next server-side applier,
# and a partial manifest would then drop the partitions it leaves out
EXAMPLES_APPLY_ARGS = ("apply", "--server-side", "--field-manager=examples")


# measured on 2 cores with empty caches, when the demo still built helm and kstatus too (168 s of Go builds with
# kube-controller-manager); the Milvus 2.3.5 venv from PyPI comes on top on a new machine
COLD_FIRST_RUN = "about 10 minutes on 2 cores, most of it Go builds"


def example_manifests(milvus_uri: str) -> str:
    """examples/*.yaml, with the connection example pointed at this Milvus."""
    texts = [path.read_text() for path in sorted((ROOT / "examples").glob("*.yaml"))]
    return "\n---\n".join(texts).replace("http://127.0.0.1:19530", milvus_uri)


def main(control_plane_only: bool = False) -> int:
    """Start everything and wait for Ctrl+C; with control_plane_only, only etcd + kube-apiserver with the CRDs."""
    with Session(farewell="demo: stopping ...") as session:
        workdir = Path(os.environ.get("DEMO_DIR") or tempfile.mkdtemp(prefix="milvusops-demo-"))
        session.say(f"demo: working in {workdir}")
        cold = gobins.missing()
        if cold:
            session.say(
                f"demo: first run on this machine: building {', '.join(cold)} from Go modules before anything"
                f" starts ({COLD_FIRST_RUN}); later runs reuse them from ~/.cache/milvusops"
            )
        binaries = gobins.ensure_all()
        plane = ControlPlane(binaries, workdir / "kube")
        session.callback(plane.stop)
        session.say("demo: starting etcd + kube-apiserver ...")
        plane.start()
        plane.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        plane.kubectl("wait", "--for=condition=Established", "-f", str(ROOT / "crds"))
        plane.kubectl("create", "namespace", NAMESPACE)
        hint = f"\nTry it:\n  export KUBECONFIG={plane.kubeconfig}\n  kubectl={binaries.kubectl}\n"
        if not control_plane_only:
            hint += _start_milvus_and_operator(session, plane, workdir)
        session.say(hint)
        if os.environ.get("DEMO_EXIT") or not sys.stdin.isatty():
            return 0
        session.say("Press Ctrl+C to stop everything.")
        session.wait()
    session.say(f"demo: stopped ({session.stopped_by})")
    return 0


def _start_milvus_and_operator(session: Session, plane: ControlPlane, workdir: Path) -> str:
    """Milvus with the example collections, the operator, the examples applied; returns the rest of the hint."""
    milvus = MilvusServer(workdir / "milvus")
    session.callback(milvus.stop)
    session.say("demo: starting Milvus 2.3.5 (authentication on, root:Milvus) ...")
    milvus.start()
    client = milvus.client()
    create_example_collections(client)
    client.close()
    session.say(f"demo: Milvus at {milvus.uri} has collections {', '.join(EXAMPLE_COLLECTIONS)}")
    env = {
        **os.environ,
        "KUBECONFIG": str(plane.kubeconfig),
        "MILVUSOPS_DEFAULT_URI": milvus.uri,
        "MILVUSOPS_DEFAULT_TOKEN": milvus.root_token,
        "MILVUSOPS_STANDALONE": "true",
        "MILVUSOPS_METRICS_PORT": str(free_port()),
        "MILVUSOPS_LIVENESS_PORT": str(free_port()),
    }
    operator = Process("operator", [sys.executable, "-m", "milvusops"], workdir / "operator.log", env=env)
    session.callback(operator.stop)
    session.say(f"demo: operator running, log in {workdir / 'operator.log'}")
    plane.kubectl(*EXAMPLES_APPLY_ARGS, "-n", NAMESPACE, "-f", "-", input=example_manifests(milvus.uri))
    _watch(session, plane, time.monotonic())
    return (
        f"  $kubectl get milvuscollections -A\n  $kubectl describe mcol -n {NAMESPACE} catalog\n"
        f"  # load partition archive of catalog, leaving recent as it is:\n"
        f"  $kubectl {' '.join(LOAD_ONE_PARTITION_ARGS)} <<'EOF'\n{LOAD_ONE_PARTITION}EOF\n"
        f"  Milvus: {milvus.uri} (token root:Milvus)\n"
    )


def _watch(session: Session, plane: ControlPlane, started: float, timeout: float = 180) -> None:
    """Print the table whenever it changes, until every resource is Ready."""
    last = ""
    while time.monotonic() - started < timeout:
        table = plane.kubectl("get", "milvuscollections", "-A", check=False).stdout
        # reprint only when something other than the AGE column changed
        content = "\n".join(line.rsplit(None, 1)[0] for line in table.splitlines() if line.strip())
        if content != last:
            session.say(f"\n[{time.monotonic() - started:5.1f}s] kubectl get milvuscollections -A\n{table}", end="")
            last = content
        ready = plane.kubectl(
            "get",
            "mcol",
            "-n",
            NAMESPACE,
            "-o",
            "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
            check=False,
        ).stdout.split()
        if ready and len(ready) == len(EXAMPLE_COLLECTIONS) and set(ready) == {"True"}:
            elapsed = time.monotonic() - started
            session.say(f"\n[{elapsed:5.1f}s] kubectl get milvuscollections -A")
            session.say(plane.kubectl("get", "milvuscollections", "-A").stdout, end="")
            session.say(f"\ndemo: every resource Ready after {elapsed:.1f}s")
            return
        time.sleep(0.5)
    print("demo: not every resource became Ready; see the operator log", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
