"""Read Kubernetes manifests for `milvusops plan`: files, directories, or standard input; YAML or JSON."""

from __future__ import annotations

import sys
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from milvusops import GROUP

SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """A path given that does not exist: the plan cannot be made."""


@dataclass(frozen=True)
class Manifest:
    source: str  # where it came from: path and document number, for the reader
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Unusable:
    """Input that is not a Kubernetes object. `error`: it may hide one (broken YAML, a template), so the plan fails;
    otherwise it certainly is none (a JSON patch, a list of values) and is only listed as skipped."""

    source: str
    reason: str
    error: bool


@dataclass(frozen=True)
class Reading:
    manifests: list[Manifest]
    unusable: list[Unusable]


def read(inputs: list[str], stdin: TextIO | None = None) -> Reading:
    """Every object in the inputs, `kind: List` unpacked; directories are read recursively, in name order.

    A file that cannot be used is reported with the rest, never ends the reading: one bad file must not hide
    what the others would do.
    """
    found = Reading([], [])
    for given in inputs:
        if given == "-":
            _documents("<stdin>", (stdin or sys.stdin).read(), found)
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
                found.unusable.append(Unusable(str(file), f"cannot be read: {exc}", error=True))
                continue
            _documents(str(file), text, found)
    return found


class _StrictLoader(yaml.SafeLoader):
    """YAML as the API server decodes a manifest: a key given twice is an error, not "the last one wins"."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                break  # SafeLoader reports an unhashable key itself (e.g. a template's {{ ... }})
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _documents(source: str, text: str, found: Reading) -> None:
    try:
        documents = list(yaml.load_all(text, Loader=_StrictLoader))  # a SafeLoader; JSON is YAML too
    except yaml.YAMLError as exc:
        template = " (a template? render it first, e.g. helm template ... | milvusops plan -)" if "{{" in text else ""
        reason = f"not valid YAML{template}: {' '.join(str(exc).split())}"
        found.unusable.append(Unusable(source, reason, error=True))
        return
    for number, document in enumerate(documents, start=1):
        where = f"{source}#{number}" if len(documents) > 1 else source
        if document is None:
            continue  # an empty document, e.g. after a trailing ---
        if not isinstance(document, Mapping):
            what = type(document).__name__
            found.unusable.append(Unusable(where, f"not a Kubernetes object (a {what}: a JSON patch?)", error=False))
            continue
        found.manifests.extend(Manifest(where, item) for item in _unpacked(document))


def _unpacked(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if document.get("kind") == "List" or (str(document.get("kind", "")).endswith("List") and "items" in document):
        for item in document.get("items") or []:
            if isinstance(item, Mapping):
                yield from _unpacked(item)
        return
    yield document


OURS = ("MilvusCollection", "MilvusConnection")


def ours(body: Mapping[str, Any]) -> bool:
    """Meant for this operator: our group, or a kind named like ours (a wrong group or version is then an error)."""
    kind = str(body.get("kind", "")).lower()
    group = str(body.get("apiVersion", "")).partition("/")[0]
    return group == GROUP or any(kind.startswith(name.lower()) for name in OURS)


def kind_of(body: Mapping[str, Any]) -> str:
    return f"{body.get('kind') or '(no kind)'} {body.get('apiVersion') or '(no apiVersion)'}"
