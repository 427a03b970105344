"""Read Kubernetes manifests for `milvusops plan`: files, directories, or standard input; YAML or JSON."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from milvusops import GROUP

SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """Input that is not a manifest at all (unreadable file, broken YAML): the plan cannot be made."""


@dataclass(frozen=True)
class Manifest:
    source: str  # where it came from: path and document number, for the reader
    body: Mapping[str, Any]


def read(inputs: list[str], stdin: TextIO | None = None) -> list[Manifest]:
    """Every object in the inputs, `kind: List` unpacked; directories are read recursively, in name order."""
    found: list[Manifest] = []
    for given in inputs:
        if given == "-":
            found += _documents("<stdin>", (stdin or sys.stdin).read())
            continue
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        elif path.is_file():
            files = [path]
        else:
            raise ManifestError(f"{given}: no such file or directory")
        for file in files:
            try:
                text = file.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise ManifestError(f"{file}: {exc}") from exc
            found += _documents(str(file), text)
    return found


def _documents(source: str, text: str) -> list[Manifest]:
    try:
        documents = list(yaml.safe_load_all(text))  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: not valid YAML: {exc}") from exc
    found: list[Manifest] = []
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue  # an empty document, e.g. after a trailing ---
        if not isinstance(document, Mapping):
            raise ManifestError(f"{source} document {number}: not an object")
        where = f"{source}#{number}" if len(documents) > 1 else source
        found += [Manifest(where, item) for item in _unpacked(document)]
    return found


def _unpacked(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if document.get("kind") == "List" or (str(document.get("kind", "")).endswith("List") and "items" in document):
        for item in document.get("items") or []:
            if isinstance(item, Mapping):
                yield from _unpacked(item)
        return
    yield document


def is_collection(body: Mapping[str, Any]) -> bool:
    """MilvusCollections of any version of our group; other kinds are not ours to plan."""
    return body.get("kind") == "MilvusCollection" and str(body.get("apiVersion", "")).startswith(f"{GROUP}/")
