"""`python -m tests.testenv build`: build or reuse the cached Go binaries and print their paths."""

from __future__ import annotations

import sys

from . import gobins


def main(argv: list[str]) -> int:
    if argv[:1] != ["build"]:
        print("usage: python -m tests.testenv build", file=sys.stderr)
        return 2
    for name, path in vars(gobins.ensure_all()).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
