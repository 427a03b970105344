"""How `make test` spreads the suite over pytest-xdist workers: whole modules, the slowest first.

Each worker starts its own control plane and Milvus standalone (session fixtures are per worker). A
module's tests stay on one worker, so a module-scoped operator still serves the whole module, and the
modules that start a Milvus cluster share one unit of work, so no two clusters compete for the 2 cores.
xdist's own `--dist loadgroup` cannot do this with pytest 9 (it renames `_nodeid`, which pytest 9 no
longer reads), so the scheduler is ours: xdist's module scheduling with our units.
"""

from __future__ import annotations

from typing import Any

import pytest

CLUSTER_FIXTURES = frozenset({"milvus_cluster", "small_cluster"})
CLUSTER_MODULES = frozenset(
    {
        "tests/e2e/operator/test_capacity.py",
        "tests/e2e/operator/test_cluster.py",
        "tests/e2e/operator/test_guard_servers.py",
    }
)
CLUSTER_UNIT = "milvus-clusters"
# the real node's tests install what the release test pushed: one worker builds the release and starts the node
NODE_FOLDER = "tests/e2e/node/"
NODE_MODULES = frozenset({"tests/e2e/packaging/test_release.py"})
NODE_UNIT = "release-and-node"
# sent first (longest first: a long module last would keep one worker busy alone at the end); the rest
# follow in collection order. Seconds per module are in docs/design/development.md
SLOWEST = (
    "tests/e2e/operator/test_faults.py",
    *sorted(CLUSTER_MODULES),
    "tests/e2e/packaging/test_release.py",
    "tests/e2e/node/test_install.py",
    "tests/e2e/packaging/test_image.py",
    "tests/e2e/operator/test_reconcile.py",
    "tests/e2e/operator/test_prune.py",
    "tests/e2e/operator/test_reasons.py",
    "tests/e2e/operator/test_tenants.py",
    "tests/e2e/operator/test_deletion.py",
)


def unit_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    if module in CLUSTER_MODULES:
        return CLUSTER_UNIT
    return NODE_UNIT if module in NODE_MODULES or module.startswith(NODE_FOLDER) else module


def _rank(item: pytest.Item) -> int:
    module = item.nodeid.split("::", 1)[0]
    return SLOWEST.index(module) if module in SLOWEST else len(SLOWEST)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    clustered = {i.nodeid.split("::", 1)[0] for i in items if CLUSTER_FIXTURES & set(getattr(i, "fixturenames", ()))}
    if clustered - CLUSTER_MODULES:
        raise pytest.UsageError(f"add {sorted(clustered - CLUSTER_MODULES)} to CLUSTER_MODULES in {__name__}")
    items.sort(key=_rank)  # stable: collection order within a rank


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class ByModule(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    config.option.loadscopereorder = False  # keep SLOWEST's order, not xdist's count of tests per unit
    return ByModule(config, log)
