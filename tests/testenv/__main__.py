"""`python -m tests.testenv build|demo`: build (or reuse) the Go binaries, or run the local demo."""

from __future__ import annotations

import sys

from . import gobins


def main(argv: list[str]) -> int:
    if argv[:1] == ["manifests"]:
        from . import manifests

        print(f"wrote {manifests.write()}")
        return 0
    if argv[:1] == ["demo"]:
        from . import demo

        return demo.main()
    if argv[:1] != ["build"]:
        print("usage: python -m tests.testenv build|demo|manifests", file=sys.stderr)
        return 2
    for name, path in vars(gobins.ensure_all()).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
