"""Check a manifest against the CRD's openAPIV3Schema and CEL rules, in the API server's own words.

The CRD files in crds/ (shipped in the package) are the only source of the rules. Reproduced: strict
field validation (unknown fields), types, enums, patterns, lengths, ranges, required fields, minItems, maxItems,
duplicate keys of list-type maps and sets, and the CEL rules that apply on create. Not reproduced:
transition rules (they need the stored object), metadata.name syntax, and server-side defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml

from milvusops import GROUP, VERSION
from milvusops.kube.cel import evaluate

CRD_FILES = {
    "MilvusCollection": "milvuscollections.milvusops.dev.yaml",
    "MilvusConnection": "milvusconnections.milvusops.dev.yaml",
    "MilvusAlias": "milvusaliases.milvusops.dev.yaml",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@cache
def crd_schema(kind: str) -> Mapping[str, Any]:
    """The openAPIV3Schema of our version of `kind`, read from the CRD shipped with the package."""
    text = resources.files("milvusops").joinpath("crds", CRD_FILES[kind]).read_text()
    crd = yaml.safe_load(text)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
    schema: Mapping[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def validate(body: Mapping[str, Any]) -> list[str]:
    """The API server's messages for a create of `body` with kubectl's default strict field validation."""
    kind = body.get("kind", "")
    if body.get("apiVersion") != f"{GROUP}/{VERSION}" or kind not in CRD_FILES:
        return [f"no kind {kind!r} in {body.get('apiVersion')!r}: this plan knows {GROUP}/{VERSION}"]
    schema = crd_schema(kind)
    unknown = _unknown_fields(schema, body, "")
    if unknown:  # strict decoding fails before the schema is checked
        return [f'unknown field "{path}"' for path in unknown]
    errors = []
    if not (body.get("metadata") or {}).get("name"):
        errors.append("metadata.name: Required value: name or generateName is required")
    value = {key: item for key, item in body.items() if key != "status"}  # status is ignored on create
    errors += _check(schema, value, "")
    if errors:
        return errors  # the API server runs CEL rules only on an object the schema accepts
    return _rules(schema, value, "")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _unknown_fields(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    if isinstance(value, dict) and "properties" in schema:
        found = []
        for name, item in value.items():
            if name not in schema["properties"]:
                found.append(_join(path, name))
            else:
                found += _unknown_fields(schema["properties"][name], item, _join(path, name))
        return found
    if isinstance(value, list) and "items" in schema:
        return [p for i, item in enumerate(value) for p in _unknown_fields(schema["items"], item, f"{path}[{i}]")]
    return []


def _type_name(value: Any) -> str:
    for name in ("boolean", "integer", "number", "string", "array", "object"):
        if _is(value, name):
            return name
    return "null"


def _is(value: Any, type_name: str) -> bool:
    if isinstance(value, bool):
        return type_name == "boolean"
    if type_name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[type_name])


def _quoted(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _check(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    expected = schema.get("type")
    if expected and not _is(value, expected):
        actual = _type_name(value)
        return [f'{path}: Invalid value: "{actual}": {path} in body must be of type {expected}: "{actual}"']
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_quoted(item) for item in schema["enum"])
        errors.append(f"{path}: Unsupported value: {_quoted(value)}: supported values: {supported}")
    if isinstance(value, str):
        errors += _string(schema, value, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        errors += _number(schema, value, path)
    elif isinstance(value, list):
        errors += _array(schema, value, path)
    elif isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                errors.append(f"{_join(path, name)}: Required value")
        for name, item in value.items():
            if name in schema.get("properties", {}):
                errors += _check(schema["properties"][name], item, _join(path, name))
    return errors


def _string(schema: Mapping[str, Any], value: str, path: str) -> list[str]:
    # like the API server (kube-openapi): the first failing of maxLength, minLength, pattern
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return [f"{path}: Too long: may not be more than {schema['maxLength']} bytes"]
    if "minLength" in schema and len(value) < schema["minLength"]:
        message = f"{path} in body should be at least {schema['minLength']} chars long"
        return [f"{path}: Invalid value: {_quoted(value)}: {message}"]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        message = f"{path} in body should match '{schema['pattern']}'"
        return [f"{path}: Invalid value: {_quoted(value)}: {message}"]
    return []


def _number(schema: Mapping[str, Any], value: float, path: str) -> list[str]:
    shown = int(value) if float(value).is_integer() else value
    if "maximum" in schema and value > schema["maximum"]:
        message = f"{path} in body should be less than or equal to {schema['maximum']}"
        return [f"{path}: Invalid value: {shown}: {message}"]
    if "minimum" in schema and value < schema["minimum"]:
        message = f"{path} in body should be greater than or equal to {schema['minimum']}"
        return [f"{path}: Invalid value: {shown}: {message}"]
    return []


def _array(schema: Mapping[str, Any], value: list[Any], path: str) -> list[str]:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return [f"{path}: Too many: {len(value)}: must have at most {schema['maxItems']} items"]
    if "minItems" in schema and len(value) < schema["minItems"]:
        message = f"{path} in body should have at least {schema['minItems']} items"
        return [f"{path}: Invalid value: {len(value)}: {message}"]
    errors = []
    for index, item in enumerate(value):
        errors += _check(schema.get("items", {}), item, f"{path}[{index}]")
    errors += _duplicates(schema, value, path)
    return errors


def _duplicates(schema: Mapping[str, Any], value: list[Any], path: str) -> list[str]:
    kind = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys", [])
    seen: set[str] = set()
    errors = []
    for index, item in enumerate(value):
        if kind == "map" and isinstance(item, dict):
            identity = {key: item[key] for key in keys if key in item}
        elif kind == "set":
            identity = item
        else:
            continue
        text = _quoted(identity)
        if text in seen:
            errors.append(f"{path}[{index}]: Duplicate value: {text}")
        seen.add(text)
    return errors


def _rules(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    """x-kubernetes-validations that need no stored object (rules without oldSelf), depth first."""
    errors = []
    for rule in schema.get("x-kubernetes-validations", ()):
        if "oldSelf" in rule["rule"] or evaluate(rule["rule"], value):
            continue
        field = (path + rule.get("fieldPath", "")).lstrip(".")
        message = " ".join(str(rule.get("message") or f"failed rule: {rule['rule']}").split())
        # the API server shows a scalar's value before the message, an object's or a list's not at all
        shown = "" if isinstance(value, dict | list) else f"{_quoted(value)}: "
        errors.append(f"{field}: Invalid value: {shown}{message}")
    if isinstance(value, dict):
        for name, item in value.items():
            if name in schema.get("properties", {}):
                errors += _rules(schema["properties"][name], item, _join(path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            errors += _rules(schema.get("items", {}), item, f"{path}[{index}]")
    return errors
