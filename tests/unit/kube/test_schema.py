"""The CRD check of `milvusops plan` against the API server's own messages, copied from a real run.

The cases are the e2e bad-input matrix (tests/e2e/apiserver/test_validation.py); the expected messages are the ones
docs/validation.md records from the real kube-apiserver for each case.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from milvusops.kube import schema
from milvusops.kube.cel import Unsupported, evaluate
from tests.e2e.apiserver.test_validation import INVALID, VALID, Case, manifest

DOC = Path(__file__).resolve().parents[3] / "docs" / "validation.md"
CREATES = [case for case in INVALID if case.before is None]


def documented_messages() -> dict[tuple[str, str], str]:
    """(kind, case id) -> the API server message column of docs/validation.md."""
    found: dict[tuple[str, str], str] = {}
    kind = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("### "):
            kind = line.removeprefix("### ").strip()
        match = re.match(r"\| `([a-z0-9-]+)` \|.*\| (.+) \|$", line)
        if match and kind:
            found[(kind, match[1])] = match[2].replace("\\|", "|")
    return found


def body(case: Case) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(manifest(case, case.spec))
    return loaded


@pytest.mark.parametrize("case", CREATES, ids=[f"{c.kind}-{c.id}" for c in CREATES])
def test_invalid_create_gets_the_api_servers_message(case: Case) -> None:
    expected = documented_messages()[(case.kind, case.id)]
    assert expected in schema.validate(body(case))


@pytest.mark.parametrize("case", [c for c in VALID if c.before is None], ids=lambda c: f"{c.kind}-{c.id}")
def test_valid_create_has_no_message(case: Case) -> None:
    assert schema.validate(body(case)) == []


def test_unknown_fields_alone_are_reported_as_strict_decoding_does() -> None:
    manifest_body = yaml.safe_load(
        "apiVersion: milvusops.dev/v1alpha1\nkind: MilvusCollection\nmetadata: {name: p}\n"
        "spec: {replicas: 2, state: Unloaded, load: {foo: 1}}"
    )
    assert sorted(schema.validate(manifest_body)) == ['unknown field "spec.load.foo"', 'unknown field "spec.replicas"']


def test_a_manifest_without_name_or_of_another_version_is_refused() -> None:
    nameless = {"apiVersion": "milvusops.dev/v1alpha1", "kind": "MilvusCollection", "metadata": {}, "spec": {}}
    assert schema.validate(nameless) == ["metadata.name: Required value: name or generateName is required"]
    other = {"apiVersion": "milvusops.dev/v1beta9", "kind": "MilvusCollection", "metadata": {"name": "a"}}
    assert "this plan knows milvusops.dev/v1alpha1" in schema.validate(other)[0]


def test_every_create_rule_in_the_crds_is_within_the_cel_subset() -> None:
    for kind in schema.CRD_FILES:
        rules = _rules(schema.crd_schema(kind))
        assert rules, kind
        for rule in rules:
            if "oldSelf" not in rule:
                evaluate(rule, {"metadata": {"name": "x"}, "spec": {}} if "metadata" in rule else "http://m")


def _rules(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [str(rule["rule"]) for rule in node.get("x-kubernetes-validations", [])]
        return own + [rule for value in node.values() for rule in _rules(value)]
    if isinstance(node, list):
        return [rule for value in node for rule in _rules(value)]
    return []


@pytest.mark.parametrize(
    ("rule", "value", "result"),
    [
        ("has(self.a) || self.b.matches('^x$')", {"b": "x"}, True),
        ("has(self.a) || self.b.matches('^x$')", {"b": "y"}, False),
        ("has(self.a) || self.b.matches('^x$')", {"a": 1, "b": "y"}, True),
        ("!self.matches('@')", "a@b", False),
        ("self.a == 'x' && (self.b != 'y')", {"a": "x", "b": "z"}, True),
        ('self.a == "x"', {"a": "y"}, False),
    ],
)
def test_cel_subset(rule: str, value: Any, result: bool) -> None:
    assert evaluate(rule, value) is result


@pytest.mark.parametrize("rule", ["self.size() > 1", "self.a + 1 == 2", "other.a == 'x'", "self.a ==", "self.missing"])
def test_cel_outside_the_subset_is_refused_not_guessed(rule: str) -> None:
    with pytest.raises(Unsupported):
        evaluate(rule, {"a": "x"})
