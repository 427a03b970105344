"""`python -m tests.testenv build|demo|cluster|manifests`: build (or reuse) the Go binaries, run the local demo
(`demo --control-plane-only`: etcd + kube-apiserver with the CRDs, no Milvus, no operator), run a Milvus cluster
until Ctrl+C (`cluster --query-nodes N`), write deploy/, or build the release artifacts (`release`)."""

from __future__ import annotations

import sys

from . import gobins


def main(argv: list[str]) -> int:
    if argv[:1] == ["lock"]:
        from . import lock

        print(f"wrote {lock.write()}")
        return 0
    if argv[:1] == ["release"]:
        from . import release

        return release.main(argv[1:])
    if argv[:1] == ["manifests"]:
        from . import manifests

        print(f"wrote {manifests.write()}")
        return 0
    if argv[:1] == ["demo"]:
        from . import demo

        return demo.main(control_plane_only="--control-plane-only" in argv)
    if argv[:1] == ["cluster"]:
        from . import cluster

        nodes = int(argv[argv.index("--query-nodes") + 1]) if "--query-nodes" in argv else 2
        return cluster.main(nodes)
    if argv[:1] != ["build"]:
        commands = "build|demo [--control-plane-only]|cluster [--query-nodes N]|manifests|lock|release [--registry R]"
        usage = f"usage: python -m tests.testenv {commands}"
        print(usage, file=sys.stderr)
        return 2
    for name, path in gobins.build_every().items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
