"""The bad-input matrix: invalid manifests of both kinds, applied with kubectl, are refused by the API server.

Every case names the field and a fragment of the server's message; docs/validation.md lists the same cases
with the messages copied from a real run. No operator and no Milvus run here: the API server alone decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.testenv.kube import ControlPlane

DOC = Path(__file__).resolve().parents[3] / "docs" / "validation.md"
COLLECTION, CONNECTION, ALIAS = "MilvusCollection", "MilvusConnection", "MilvusAlias"
URI = "http://milvus:19530"
LONG_NAME = "a" * 255


@dataclass(frozen=True)
class Case:
    """One manifest; `before` (a spec) is applied first when the case is an update of an existing object."""

    id: str
    kind: str
    spec: str | dict[str, Any] | None  # YAML flow text as a user would write it, or a built value for huge inputs
    field: str
    message: str
    name: str = "products"
    before: str | None = None
    extra: str = ""  # YAML merged into the top level of the manifest, for fields outside spec


def _window(start: str = "0 8 * * 1-5") -> dict[str, Any]:
    return {"start": start, "durationSeconds": 3600, "timeZone": "Europe/Berlin"}


def _partitions(count: int) -> list[dict[str, str]]:
    return [{"name": f"p{index}", "state": "Loaded"} for index in range(count)]


INVALID: list[Case] = [
    # MilvusCollection: enums
    Case("state-not-in-enum", COLLECTION, "{state: Unloaded}", "spec.state", 'Unsupported value: "Unloaded"'),
    Case("state-wrong-case", COLLECTION, "{state: loaded}", "spec.state", 'supported values: "Loaded", "Released"'),
    Case(
        "management-policy-not-in-enum",
        COLLECTION,
        "{managementPolicy: Delete}",
        "spec.managementPolicy",
        'supported values: "Manage", "Observe"',
    ),
    Case(
        "deletion-policy-not-in-enum",
        COLLECTION,
        "{deletionPolicy: Delete}",
        "spec.deletionPolicy",
        'supported values: "Retain", "Release"',
    ),
    Case(
        "partition-state-not-in-enum",
        COLLECTION,
        "{partitions: [{name: p1, state: Loading}]}",
        "spec.partitions[0].state",
        'Unsupported value: "Loading"',
    ),
    # MilvusCollection: names
    Case("collection-name-empty", COLLECTION, "{collectionName: ''}", "spec.collectionName", "at least 1 chars long"),
    Case(
        "collection-name-starts-with-digit",
        COLLECTION,
        "{collectionName: 1products}",
        "spec.collectionName",
        "should match '^[A-Za-z_][A-Za-z0-9_]*$'",
    ),
    Case(
        "collection-name-with-dash",
        COLLECTION,
        "{collectionName: my-products}",
        "spec.collectionName",
        "should match '^[A-Za-z_][A-Za-z0-9_]*$'",
    ),
    Case(
        "collection-name-too-long",
        COLLECTION,
        {"collectionName": "a" * 256},
        "spec.collectionName",
        "may not be more than 255 bytes",
    ),
    Case("database-empty", COLLECTION, "{database: ''}", "spec.database", "at least 1 chars long"),
    Case("database-with-dash", COLLECTION, "{database: my-db}", "spec.database", "should match"),
    Case(
        "metadata-name-not-a-milvus-name",
        COLLECTION,
        "{state: Loaded}",
        "spec.collectionName",
        "spec.collectionName is required when metadata.name is not a valid Milvus collection name",
        name="my-products",
    ),
    Case(
        "metadata-name-all-digits",
        COLLECTION,
        "{state: Loaded}",
        "spec.collectionName",
        "spec.collectionName is required when metadata.name is not a valid Milvus collection name",
        name="2024",
    ),
    Case(
        "partition-name-with-space",
        COLLECTION,
        "{partitions: [{name: 'part A', state: Loaded}]}",
        "spec.partitions[0].name",
        "should match",
    ),
    Case(
        "partition-name-too-long",
        COLLECTION,
        {"partitions": [{"name": "p" * 256, "state": "Loaded"}]},
        "spec.partitions[0].name",
        "may not be more than 255 bytes",
    ),
    Case(
        "connection-ref-name-uppercase",
        COLLECTION,
        "{connectionRef: {name: Main}}",
        "spec.connectionRef.name",
        "should match",
    ),
    # MilvusCollection: lists
    Case(
        "partition-listed-twice",
        COLLECTION,
        "{partitions: [{name: p1, state: Loaded}, {name: p1, state: Released}]}",
        "spec.partitions[1]",
        'Duplicate value: {"name":"p1"}',
    ),
    Case(
        "too-many-partitions",
        COLLECTION,
        {"partitions": _partitions(4097)},
        "spec.partitions",
        "must have at most 4096 items",
    ),
    Case(
        "partition-without-state",
        COLLECTION,
        "{partitions: [{name: p1}]}",
        "spec.partitions[0].state",
        "Required value",
    ),
    Case(
        "partition-without-name",
        COLLECTION,
        "{partitions: [{state: Loaded}]}",
        "spec.partitions[0].name",
        "Required value",
    ),
    Case(
        "resource-group-listed-twice",
        COLLECTION,
        "{load: {resourceGroups: [rg1, rg1]}}",
        "spec.load.resourceGroups[1]",
        'Duplicate value: "rg1"',
    ),
    Case(
        "resource-group-empty",
        COLLECTION,
        "{load: {resourceGroups: ['']}}",
        "spec.load.resourceGroups[0]",
        "at least 1 chars long",
    ),
    Case(
        "load-field-with-dash",
        COLLECTION,
        "{load: {loadFields: [my-vector]}}",
        "spec.load.loadFields[0]",
        "should match",
    ),
    Case(
        "resource-group-with-space",
        COLLECTION,
        "{load: {resourceGroups: ['rg 1']}}",
        "spec.load.resourceGroups[0]",
        "should match",
    ),
    Case(
        "too-many-load-fields",
        COLLECTION,
        {"load": {"loadFields": [f"f{index}" for index in range(1025)]}},
        "spec.load.loadFields",
        "must have at most 1024 items",
    ),
    # MilvusCollection: numbers and types
    Case("replicas-zero", COLLECTION, "{load: {replicas: 0}}", "spec.load.replicas", "greater than or equal to 1"),
    Case("replicas-101", COLLECTION, "{load: {replicas: 101}}", "spec.load.replicas", "less than or equal to 100"),
    Case("replicas-negative", COLLECTION, "{load: {replicas: -1}}", "spec.load.replicas", "greater than or equal to 1"),
    Case(
        "replicas-as-string",
        COLLECTION,
        "{load: {replicas: 'two'}}",
        "spec.load.replicas",
        "must be of type integer",
    ),
    Case(
        "replicas-fractional",
        COLLECTION,
        "{load: {replicas: 1.5}}",
        "spec.load.replicas",
        "must be of type integer",
    ),
    Case(
        "partitions-as-string",
        COLLECTION,
        "{partitions: 'p1,p2'}",
        "spec.partitions",
        "must be of type array",
    ),
    Case(
        "skip-dynamic-field-as-string",
        COLLECTION,
        "{load: {skipLoadDynamicField: 'yes'}}",
        "spec.load.skipLoadDynamicField",
        "must be of type boolean",
    ),
    Case(
        "priority-not-in-enum",
        COLLECTION,
        "{load: {priority: Medium}}",
        "spec.load.priority",
        'Unsupported value: "Medium"',
    ),
    Case("load-as-number", COLLECTION, "{load: 3}", "spec.load", "must be of type object"),
    Case("spec-missing", COLLECTION, None, "spec", "Required value"),
    # MilvusCollection: unknown fields (kubectl's default --validate=strict asks the server to refuse them)
    Case(
        "unknown-spec-field",
        COLLECTION,
        "{replicas: 2}",
        "spec.replicas",
        'unknown field "spec.replicas"',
    ),
    Case(
        "connection-ref-namespace",
        COLLECTION,
        "{connectionRef: {name: main, namespace: other}}",
        "spec.connectionRef.namespace",
        'unknown field "spec.connectionRef.namespace"',
    ),
    Case(
        "unknown-top-level-field",
        COLLECTION,
        "{state: Loaded}",
        "specs",
        'unknown field "specs"',
        extra="{specs: {state: Loaded}}",
    ),
    # MilvusCollection: updates of an existing object
    Case(
        "collection-name-changed",
        COLLECTION,
        "{collectionName: other}",
        "spec.collectionName",
        "collectionName is immutable",
        before="{collectionName: products}",
    ),
    Case(
        "collection-name-added",
        COLLECTION,
        "{collectionName: products}",
        "spec.collectionName",
        "collectionName is immutable",
        before="{state: Loaded}",
    ),
    Case(
        "collection-name-removed",
        COLLECTION,
        "{state: Loaded}",
        "spec.collectionName",
        "collectionName is immutable",
        before="{collectionName: products, state: Loaded}",
    ),
    Case(
        "database-changed",
        COLLECTION,
        "{database: analytics}",
        "spec.database",
        "database is immutable",
        before="{database: default}",
    ),
    Case(
        "database-removed",
        COLLECTION,
        "{state: Loaded}",
        "spec.database",
        "database is immutable",
        before="{database: analytics, state: Loaded}",
    ),
    Case(
        "update-with-replicas-zero",
        COLLECTION,
        "{state: Loaded, load: {replicas: 0}}",
        "spec.load.replicas",
        "greater than or equal to 1",
        before="{state: Loaded, load: {replicas: 2}}",
    ),
    # MilvusCollection: load windows
    Case("schedule-without-windows", COLLECTION, "{schedule: {}}", "spec.schedule.windows", "Required value"),
    Case(
        "schedule-no-window",
        COLLECTION,
        "{schedule: {windows: []}}",
        "spec.schedule.windows",
        "should have at least 1 items",
    ),
    Case(
        "schedule-17-windows",
        COLLECTION,
        {"schedule": {"windows": [_window()] * 17}},
        "spec.schedule.windows",
        "must have at most 16 items",
    ),
    Case(
        "window-start-with-seconds",
        COLLECTION,
        "{schedule: {windows: [{start: '0 0 8 * * *', durationSeconds: 60, timeZone: UTC}]}}",
        "spec.schedule.windows[0].start",
        "should match",
    ),
    Case(
        "window-start-macro",
        COLLECTION,
        "{schedule: {windows: [{start: '@daily', durationSeconds: 60, timeZone: UTC}]}}",
        "spec.schedule.windows[0].start",
        "should match",
    ),
    Case(
        "window-duration-zero",
        COLLECTION,
        "{schedule: {windows: [{start: '0 8 * * *', durationSeconds: 0, timeZone: UTC}]}}",
        "spec.schedule.windows[0].durationSeconds",
        "greater than or equal to 1",
    ),
    Case(
        "window-duration-over-31-days",
        COLLECTION,
        "{schedule: {windows: [{start: '0 8 * * *', durationSeconds: 2678401, timeZone: UTC}]}}",
        "spec.schedule.windows[0].durationSeconds",
        "less than or equal to 2678400",
    ),
    Case(
        "window-duration-as-text",
        COLLECTION,
        "{schedule: {windows: [{start: '0 8 * * *', durationSeconds: 2h, timeZone: UTC}]}}",
        "spec.schedule.windows[0].durationSeconds",
        "must be of type integer",
    ),
    Case(
        "window-time-zone-offset",
        COLLECTION,
        "{schedule: {windows: [{start: '0 8 * * *', durationSeconds: 60, timeZone: '+02:00'}]}}",
        "spec.schedule.windows[0].timeZone",
        "should match",
    ),
    Case(
        "window-without-time-zone",
        COLLECTION,
        "{schedule: {windows: [{start: '0 8 * * *', durationSeconds: 60}]}}",
        "spec.schedule.windows[0].timeZone",
        "Required value",
    ),
    Case(
        "outside-windows-loaded",
        COLLECTION,
        "{schedule: {windows: [{start: '0 8 * * *', durationSeconds: 60, timeZone: UTC}], outsideWindows: Loaded}}",
        "spec.schedule.outsideWindows",
        'supported values: "Released"',
    ),
    # MilvusConnection
    Case("uri-missing", CONNECTION, "{timeoutSeconds: 10}", "spec.uri", "Required value", name="main"),
    Case("uri-empty", CONNECTION, "{uri: ''}", "spec.uri", "at least 1 chars long", name="main"),
    Case("uri-without-scheme", CONNECTION, "{uri: 'milvus:19530'}", "spec.uri", "should match", name="main"),
    Case("uri-ftp-scheme", CONNECTION, "{uri: 'ftp://milvus:19530'}", "spec.uri", "should match", name="main"),
    Case(
        "uri-grpc-scheme",
        CONNECTION,
        "{uri: 'grpc://milvus:19530'}",
        "spec.uri",
        "pymilvus does not accept grpc://",
        name="main",
    ),
    Case(
        "uri-too-long",
        CONNECTION,
        {"uri": "http://" + "m" * 2042},
        "spec.uri",
        "may not be more than 2048 bytes",
        name="main",
    ),
    Case(
        "uri-with-space",
        CONNECTION,
        "{uri: 'http://milvus :19530'}",
        "spec.uri",
        "should match",
        name="main",
    ),
    Case(
        "uri-with-password",
        CONNECTION,
        "{uri: 'http://root:Milvus@milvus:19530'}",
        "spec.uri",
        "must not contain credentials",
        name="main",
    ),
    Case(
        "server-name-empty",
        CONNECTION,
        f"{{uri: '{URI}', tls: {{serverName: ''}}}}",
        "spec.tls.serverName",
        "at least 1 chars long",
        name="main",
    ),
    Case(
        "timeout-zero",
        CONNECTION,
        f"{{uri: '{URI}', timeoutSeconds: 0}}",
        "spec.timeoutSeconds",
        "greater than or equal to 1",
        name="main",
    ),
    Case(
        "timeout-301",
        CONNECTION,
        f"{{uri: '{URI}', timeoutSeconds: 301}}",
        "spec.timeoutSeconds",
        "less than or equal to 300",
        name="main",
    ),
    Case(
        "timeout-as-string",
        CONNECTION,
        f"{{uri: '{URI}', timeoutSeconds: '10s'}}",
        "spec.timeoutSeconds",
        "must be of type integer",
        name="main",
    ),
    Case(
        "credentials-secret-namespace",
        CONNECTION,
        f"{{uri: '{URI}', credentialsSecretRef: {{name: creds, namespace: kube-system}}}}",
        "spec.credentialsSecretRef.namespace",
        'unknown field "spec.credentialsSecretRef.namespace"',
        name="main",
    ),
    Case(
        "ca-secret-namespace",
        CONNECTION,
        f"{{uri: '{URI}', tls: {{caSecretRef: {{name: ca, namespace: kube-system}}}}}}",
        "spec.tls.caSecretRef.namespace",
        'unknown field "spec.tls.caSecretRef.namespace"',
        name="main",
    ),
    Case(
        "tls-insecure-skip-verify",
        CONNECTION,
        f"{{uri: '{URI}', tls: {{insecureSkipVerify: true}}}}",
        "spec.tls.insecureSkipVerify",
        'unknown field "spec.tls.insecureSkipVerify"',
        name="main",
    ),
    Case(
        "credentials-secret-without-name",
        CONNECTION,
        f"{{uri: '{URI}', credentialsSecretRef: {{key: token}}}}",
        "spec.credentialsSecretRef.name",
        "Required value",
        name="main",
    ),
    Case(
        "credentials-secret-name-uppercase",
        CONNECTION,
        f"{{uri: '{URI}', credentialsSecretRef: {{name: My_Secret}}}}",
        "spec.credentialsSecretRef.name",
        "should match",
        name="main",
    ),
    Case(
        "credentials-key-with-slash",
        CONNECTION,
        f"{{uri: '{URI}', credentialsSecretRef: {{name: creds, key: a/b}}}}",
        "spec.credentialsSecretRef.key",
        "should match",
        name="main",
    ),
    Case(
        "ca-key-empty",
        CONNECTION,
        f"{{uri: '{URI}', tls: {{caSecretRef: {{name: ca, key: ''}}}}}}",
        "spec.tls.caSecretRef.key",
        "at least 1 chars long",
        name="main",
    ),
    Case(
        "server-name-too-long",
        CONNECTION,
        {"uri": URI, "tls": {"serverName": "s" * 254}},
        "spec.tls.serverName",
        "may not be more than 253 bytes",
        name="main",
    ),
    Case(
        "tls-as-string", CONNECTION, f"{{uri: '{URI}', tls: 'on'}}", "spec.tls", "must be of type object", name="main"
    ),
    # MilvusAlias
    Case("alias-missing", ALIAS, "{target: {collectionName: blue}}", "spec.alias", "Required value", name="search"),
    Case("alias-with-dash", ALIAS, "{alias: my-search, target: {collectionName: blue}}", "spec.alias", "should match"),
    Case("alias-target-missing", ALIAS, "{alias: search}", "spec.target", "Required value", name="search"),
    Case(
        "alias-target-both",
        ALIAS,
        "{alias: search, target: {collectionName: blue, collectionRef: {name: green}}}",
        "spec.target",
        "set exactly one of target.collectionRef and target.collectionName",
        name="search",
    ),
    Case(
        "alias-target-neither",
        ALIAS,
        "{alias: search, target: {}}",
        "spec.target",
        "set exactly one of target.collectionRef and target.collectionName",
        name="search",
    ),
    Case(
        "alias-target-ref-uppercase",
        ALIAS,
        "{alias: search, target: {collectionRef: {name: Green}}}",
        "spec.target.collectionRef.name",
        "should match",
        name="search",
    ),
    Case(
        "alias-deletion-policy-release",
        ALIAS,
        "{alias: search, target: {collectionName: blue}, deletionPolicy: Release}",
        "spec.deletionPolicy",
        'supported values: "Retain", "Drop"',
        name="search",
    ),
    Case(
        "alias-release-negative",
        ALIAS,
        "{alias: search, target: {collectionName: blue}, releasePrevious: {afterSeconds: -1}}",
        "spec.releasePrevious.afterSeconds",
        "should be greater than or equal to 0",
        name="search",
    ),
    Case(
        "alias-release-without-seconds",
        ALIAS,
        "{alias: search, target: {collectionName: blue}, releasePrevious: {}}",
        "spec.releasePrevious.afterSeconds",
        "Required value",
        name="search",
    ),
    Case(
        "alias-renamed",
        ALIAS,
        "{alias: search2, target: {collectionName: blue}}",
        "spec.alias",
        "alias is immutable",
        name="search",
        before="{alias: search, target: {collectionName: blue}}",
    ),
    Case(
        "alias-database-changed",
        ALIAS,
        "{alias: search, database: other, target: {collectionName: blue}}",
        "spec.database",
        "database is immutable",
        name="search",
        before="{alias: search, target: {collectionName: blue}}",
    ),
]

VALID: list[Case] = [
    Case(
        "longest-names",
        COLLECTION,
        {
            "collectionName": LONG_NAME,
            "database": LONG_NAME,
            "partitions": [{"name": LONG_NAME, "state": "Loaded"}],
            "load": {"loadFields": [LONG_NAME], "resourceGroups": [LONG_NAME]},
        },
        "",
        "",
    ),
    Case("dashed-name-with-collection-name", COLLECTION, "{collectionName: my_products}", "", "", name="my-products"),
    Case("milvus-valid-metadata-name", COLLECTION, "{}", "", "", name="products2"),
    Case("4096-partitions", COLLECTION, {"partitions": _partitions(4096)}, "", "", name="big"),
    Case(
        "every-option-at-its-limit",
        COLLECTION,
        "{state: Loaded, load: {replicas: 100, skipLoadDynamicField: true, priority: Low}, managementPolicy: Observe,"
        " deletionPolicy: Release, partitions: [{name: _default, state: Released}], connectionRef: {name: main.prod}}",
        "",
        "",
    ),
    Case(
        "mutable-fields-changed",
        COLLECTION,
        "{collectionName: products, database: analytics, state: Loaded, load: {replicas: 3},"
        " partitions: [{name: p1, state: Released}]}",
        "",
        "",
        before="{collectionName: products, database: analytics, state: Released,"
        " partitions: [{name: p1, state: Loaded}]}",
    ),
    Case(
        "schedule-at-its-limits",
        COLLECTION,
        {
            "state": "Loaded",
            "schedule": {
                "windows": [
                    {"start": "*/5 9-17 * JAN-DEC MON-FRI", "durationSeconds": 1, "timeZone": "UTC"},
                    {"start": "30 2 L * *", "durationSeconds": 2678400, "timeZone": "America/Argentina/Buenos_Aires"},
                    *[_window()] * 14,
                ]
            },
        },
        "",
        "",
    ),
    Case(
        "full-connection",
        CONNECTION,
        "{uri: 'https://milvus.example.com:19530', credentialsSecretRef: {name: creds, key: root.token},"
        " tls: {caSecretRef: {name: ca}, serverName: milvus.example.com}, timeoutSeconds: 300}",
        "",
        "",
        name="main",
    ),
    Case("unix-socket-connection", CONNECTION, "{uri: 'unix:///var/run/milvus.sock', timeoutSeconds: 1}", "", ""),
    Case("at-sign-after-the-host", CONNECTION, "{uri: 'http://milvus:19530/?tag=a@b'}", "", ""),
    Case(
        "alias-target-switched",
        ALIAS,
        "{alias: search, target: {collectionRef: {name: green}}, deletionPolicy: Drop,"
        " releasePrevious: {afterSeconds: 0}, connectionRef: {name: main}}",
        "",
        "",
        name="search",
        before="{alias: search, target: {collectionName: blue}, connectionRef: {name: main}}",
    ),
]


def manifest(case: Case, spec: str | dict[str, Any] | None) -> str:
    body: dict[str, Any] = {
        "apiVersion": "milvusops.dev/v1alpha1",
        "kind": case.kind,
        "metadata": {"name": case.name},
    }
    if spec is not None:
        body["spec"] = yaml.safe_load(spec) if isinstance(spec, str) else spec
    if case.extra:
        body.update(yaml.safe_load(case.extra))
    return json.dumps(body)


def contains(whole: Any, part: Any) -> bool:
    """`part` is in `whole`, which may also carry server-side defaults."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(key in whole and contains(whole[key], part[key]) for key in part)
    if isinstance(part, list):
        return isinstance(whole, list) and len(whole) == len(part) and all(map(contains, whole, part))
    return bool(whole == part)


def stored(plane: ControlPlane, case: Case, namespace: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(
        plane.kubectl("get", case.kind.lower(), case.name, "-n", namespace, "-o", "json").stdout
    )
    return got


def apply(plane: ControlPlane, case: Case, namespace: str) -> tuple[int, str, dict[str, Any] | None]:
    """Apply `before` (must succeed), then the case; return the result and the object stored before it."""
    previous = None
    if case.before is not None:
        plane.kubectl("apply", "-n", namespace, "-f", "-", input=manifest(case, case.before))
        previous = stored(plane, case, namespace)
    result = plane.kubectl("apply", "-n", namespace, "-f", "-", input=manifest(case, case.spec), check=False)
    return result.returncode, result.stderr, previous


@pytest.mark.parametrize(
    "case", INVALID, ids=[f"{case.kind.removeprefix('Milvus').lower()}-{case.id}" for case in INVALID]
)
def test_invalid_manifest_is_rejected_naming_the_field(control_plane: ControlPlane, namespace: str, case: Case) -> None:
    returncode, stderr, previous = apply(control_plane, case, namespace)
    assert returncode != 0, f"accepted: {case.spec}"
    assert case.field in stderr
    assert case.message in stderr
    if previous is None:
        missing = control_plane.kubectl("get", case.kind.lower(), case.name, "-n", namespace, check=False)
        assert "NotFound" in missing.stderr
    else:
        # a rejected update loses nothing: the stored object is exactly as it was
        after = stored(control_plane, case, namespace)
        assert after["metadata"]["resourceVersion"] == previous["metadata"]["resourceVersion"]
        assert after["spec"] == previous["spec"]


@pytest.mark.parametrize("case", VALID, ids=[f"{case.kind.removeprefix('Milvus').lower()}-{case.id}" for case in VALID])
def test_valid_edge_case_is_accepted(control_plane: ControlPlane, namespace: str, case: Case) -> None:
    returncode, stderr, _ = apply(control_plane, case, namespace)
    assert returncode == 0, stderr
    applied = yaml.safe_load(case.spec) if isinstance(case.spec, str) else case.spec
    assert contains(stored(control_plane, case, namespace)["spec"], applied)


def test_unknown_field_is_only_a_warning_when_the_user_turns_strict_validation_off(
    control_plane: ControlPlane, namespace: str
) -> None:
    # kubectl's default --validate=strict rejects it (matrix above); with warn the server prunes it: never stored
    case = next(case for case in INVALID if case.id == "credentials-secret-namespace")
    result = control_plane.kubectl(
        "apply", "--validate=warn", "-n", namespace, "-f", "-", input=manifest(case, case.spec)
    )
    assert 'unknown field "spec.credentialsSecretRef.namespace"' in result.stderr
    assert stored(control_plane, case, namespace)["spec"]["credentialsSecretRef"] == {"name": "creds", "key": "token"}


def test_every_case_is_in_the_documentation_table() -> None:
    table = DOC.read_text()
    for case in INVALID + VALID:
        assert f"| `{case.id}` |" in table, case.id
