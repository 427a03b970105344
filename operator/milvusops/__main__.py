"""`python -m milvusops` / `milvusops`: configure from environment and flags, then run Kopf; or `plan`."""

from __future__ import annotations

import sys

from milvusops import pandas_standin


def main(argv: list[str] | None = None) -> None:
    """`milvusops plan ...` previews; anything else (no arguments, or the operator's flags) runs the operator."""
    pandas_standin.install()  # first: every other module of the operator imports pymilvus, which imports pandas
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["plan"]:
        from milvusops.preview import cli  # only now: it imports pymilvus

        sys.exit(cli.main(args[1:]))
    from milvusops.runtime import launch  # only now: it imports pymilvus

    launch.main(args)


if __name__ == "__main__":
    main()
