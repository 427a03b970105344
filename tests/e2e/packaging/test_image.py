"""The container image, built with podman from the Dockerfile, runs as the operator for real."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.e2e.helpers import Kube, OperatorProcess, load_states, new_collection, wait_for
from tests.testenv import image, lock
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer


@pytest.fixture(scope="session")
def operator_image() -> str:
    return image.build_image()


def _alive(operator: OperatorProcess) -> bool:
    try:
        return operator.liveness() == 200
    except OSError:
        return False


def test_image_runs_non_root_without_compilers(operator_image: str) -> None:
    config = json.loads(
        subprocess.run(
            ["podman", "image", "inspect", operator_image], capture_output=True, text=True, check=True
        ).stdout
    )[0]["Config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["milvusops"]
    probe = subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            "--runtime",
            "runc",
            *image.ulimits(),
            "--entrypoint",
            "sh",
            operator_image,
            "-c",
            "command -v gcc cc pip || true; id -u",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["65532"]  # no compiler, no pip, numeric non-root user


def test_image_as_the_operator_reaches_ready(
    control_plane: ControlPlane,
    kube: Kube,
    namespace: str,
    milvus: MilvusServer,
    operator_image: str,
    tmp_path: Path,
) -> None:
    collection = new_collection(milvus, ["a", "b"])
    operator = OperatorProcess(control_plane, milvus, namespace, tmp_path, image=operator_image).start()
    try:
        wait_for(lambda: _alive(operator), 30, "liveness endpoint answers 200")
        kube.create(
            namespace, "contained", {"collectionName": collection, "partitions": [{"name": "b", "state": "Loaded"}]}
        )
        kube.wait_reason(namespace, "contained", "InSync", timeout=90)
        assert load_states(milvus, collection) == {"_default": "NotLoad", "a": "NotLoad", "b": "Loaded"}
        wait_for(lambda: operator.metric("milvusops_load_release_calls_total", method="load_partitions") == 1, 10)
    finally:
        operator.stop()
    assert "Traceback" not in operator.log()
    left = subprocess.run(
        ["podman", "ps", "-q", "--filter", f"name={operator.container}"], capture_output=True, text=True
    )
    assert left.stdout.strip() == ""


def test_image_plan_checks_manifests_against_the_packaged_crds(operator_image: str) -> None:
    invalid = "apiVersion: milvusops.dev/v1alpha1\nkind: MilvusCollection\nmetadata: {name: bad}\n"
    invalid += "spec:\n  state: Unloaded\n"
    argv = ["podman", "run", "--rm", "-i", "--runtime", "runc", *image.ulimits(), operator_image, "plan", "-"]
    result = subprocess.run(argv, input=invalid, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 1, result.stderr
    assert 'spec.state: Unsupported value: "Unloaded"' in result.stdout


LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m; print(*(f'{d.name.lower()}=={d.version}' for d in m.distributions()))"
)


def test_image_holds_exactly_the_locked_dependencies(operator_image: str) -> None:
    """requirements.lock is what the image runs: the same names and versions, nothing else but milvusops."""
    listing = subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            "--runtime",
            "runc",
            *image.ulimits(),
            "--entrypoint",
            "python3",
            operator_image,
            "-c",
            LIST_DISTRIBUTIONS,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    locked = [line.split(" ")[0] for line in lock.LOCK.read_text().splitlines() if line and not line.startswith("#")]
    installed = [f"{canonicalize_name(item.split('==')[0])}=={item.split('==')[1]}" for item in listing]
    assert sorted(item for item in installed if not item.startswith("milvusops==")) == sorted(locked)
