"""The public release workflow (.github/workflows/release.yml, which cannot run here) calls `make release`, the
target the local e2e test checks, so the two cannot drift apart silently."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from tests.testenv import release

WORKFLOW = release.ROOT / ".github" / "workflows" / "release.yml"


def _workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def _steps() -> list[dict[str, Any]]:
    return [step for job in _workflow()["jobs"].values() for step in job["steps"]]


def _make_calls() -> list[list[str]]:
    calls = []
    for step in _steps():
        for line in step.get("run", "").splitlines():
            words = shlex.split(line)
            if words[:1] == ["make"]:
                calls.append(words[1:])
    return calls


def _makefile_targets(makefile: Path = release.ROOT / "Makefile") -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w.-]*):", makefile.read_text(), flags=re.MULTILINE))


def test_runs_on_a_version_tag() -> None:
    triggers = _workflow()[True]  # YAML 1.1 reads the key `on` as the boolean true
    assert triggers["push"]["tags"] == ["v*"]


def test_builds_the_artifacts_with_make_release_then_pushes_the_chart_with_it() -> None:
    calls = _make_calls()
    assert ["release"] in calls, calls  # dist/ only: the archive, the SBOM and the chart, as the e2e test builds
    pushes = [c for c in calls if any(w.startswith("REGISTRY=") for w in c)]
    assert pushes and all(c[0] == "release" and "RELEASE_PUSH=chart" in c for c in pushes), pushes
    assert {c[0] for c in calls} <= _makefile_targets()


def test_the_first_make_release_pushes_nothing() -> None:
    """make takes variables from the environment: a job or step env named REGISTRY would push from dist/ only."""
    envs = [job.get("env", {}) for job in _workflow()["jobs"].values()] + [s.get("env", {}) for s in _steps()]
    assert all("REGISTRY" not in env for env in envs)


def test_multi_arch_image_signed_keylessly_with_the_sbom_attested() -> None:
    build = next(s for s in _steps() if s.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["platforms"].split(",") == ["linux/amd64", "linux/arm64"]
    assert build["with"]["push"] is True
    scripts = "\n".join(s.get("run", "") for s in _steps())
    assert "cosign sign --yes" in scripts and "--key" not in scripts  # keyless: the workflow's OIDC identity
    assert re.search(
        r"cosign attest --yes --type cyclonedx --predicate \"dist/milvusops-\$\{VERSION\}\.cdx\.json\"", scripts
    )
    assert _workflow()["permissions"]["id-token"] == "write"
