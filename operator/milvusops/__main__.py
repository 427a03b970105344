"""`python -m milvusops` / `milvusops`: configure from environment and flags, then run Kopf; or `plan`."""

from __future__ import annotations

import sys

from milvusops import pandas_standin

COMMANDS = """milvusops: a Kubernetes operator for Milvus collection load state.

  milvusops plan [PATHS | --live] ...   preview what the operator would do, changing nothing (milvusops plan --help)
  milvusops --version                   print the version
  milvusops [FLAGS]                     run the operator; every flag is also a MILVUSOPS_* variable (below)
"""


def main(argv: list[str] | None = None) -> None:
    """`milvusops plan ...` previews; anything else (no arguments, or the operator's flags) runs the operator."""
    pandas_standin.install()  # first: every other module of the operator imports pymilvus, which imports pandas
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--version"]:
        from milvusops import version

        print(f"milvusops {version()}")
        return
    if args[:1] in (["-h"], ["--help"]):
        print(COMMANDS)  # then the operator's own flags, as pydantic-settings prints them
    if args[:1] == ["plan"]:
        from milvusops.preview import cli  # only now: it imports pymilvus

        sys.exit(cli.main(args[1:]))
    from milvusops.runtime import launch  # only now: it imports pymilvus

    launch.main(args)


if __name__ == "__main__":
    main()
