"""`python -m milvusops` / `milvusops`: configure from environment and flags, then run Kopf; or `plan`."""

from __future__ import annotations

from . import nopandas


def main(argv: list[str] | None = None) -> None:
    nopandas.install()  # first: every other module of the operator imports pymilvus, which imports pandas
    from . import launch  # only now: it imports pymilvus

    launch.main(argv)


if __name__ == "__main__":
    main()
