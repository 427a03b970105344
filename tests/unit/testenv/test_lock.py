"""requirements.lock pins every runtime dependency of pyproject.toml, at a version its range allows, with a hash.

Whether it is complete (every transitive dependency) is proven where it is used: the image build installs
it with --require-hashes, which refuses any requirement without a pinned hash (tests/e2e/packaging).
"""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.testenv.lock import LOCK, ROOT


def _pins() -> dict[str, tuple[str, list[str]]]:
    pins: dict[str, tuple[str, list[str]]] = {}
    for line in LOCK.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        requirement, *hashes = line.split(" --hash=")
        name, _, version = requirement.partition("==")
        assert canonicalize_name(name) not in pins, f"{name} pinned twice"
        pins[canonicalize_name(name)] = (version, hashes)
    return pins


def test_every_dependency_is_pinned_within_its_range_with_a_hash() -> None:
    pins = _pins()
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dependency in map(Requirement, dependencies):
        version, _ = pins[canonicalize_name(dependency.name)]
        assert dependency.specifier.contains(version), f"{dependency}: locked {version}; run `make lock`"
    digests = [digest for _, hashes in pins.values() for digest in hashes]
    assert all(digest.startswith("sha256:") and len(digest) == 7 + 64 for digest in digests)
    # one file for both platforms (pure Python) or one per platform (x86_64, aarch64): the arm64 image installs too
    assert all(len(hashes) in (1, 2) for _, hashes in pins.values())
    assert any(len(hashes) == 2 for _, hashes in pins.values())
    assert len(pins) > len(dependencies)  # transitive ones too
