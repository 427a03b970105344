"""`milvusops plan` as a CI gate: every input that cannot be planned exits 1 with one line, never a traceback.

Table test of inputs -> exit code -> message; none of these reaches Milvus (tests/e2e/cli/test_plan_cli.py
plans real manifests against a real Milvus).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from milvusops.preview import cli

COLLECTION = (
    "apiVersion: milvusops.dev/v1alpha1\nkind: MilvusCollection\nmetadata: {name: c}\nspec: {collectionName: c}\n"
)
CONNECTION = (
    "apiVersion: milvusops.dev/v1alpha1\nkind: MilvusConnection\nmetadata: {name: m}\n"
    "spec: {uri: 'http://root:Milvus@milvus:19530', timeoutSeconds: 0}\n"
)
ALIAS = (
    "apiVersion: milvusops.dev/v1alpha1\nkind: MilvusAlias\nmetadata: {name: m}\n"
    "spec: {alias: live, target: {collectionName: c}}\n"
)
KUBECONFIG_UNREACHABLE = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""

CASES = [
    # (name, argv, files, environment, exit code, what the one line says)
    ("unknown flag", ["--dry-run", "m"], {}, {}, 1, "unrecognized arguments: --dry-run"),
    ("unknown output", ["-o", "yaml", "m"], {}, {}, 1, "argument -o/--output: invalid choice: 'yaml'"),
    ("nothing given", [], {}, {}, 1, "give manifest paths"),
    ("missing path", ["nowhere"], {}, {}, 1, "nowhere: no such file or directory"),
    ("empty folder", ["m"], {"m/README.md": "no manifests"}, {}, 1, "no MilvusCollection or MilvusAlias in the input"),
    ("other kinds only", ["m"], {"m/cm.yaml": "apiVersion: v1\nkind: ConfigMap\n"}, {}, 1, "no MilvusCollection"),
    (
        "a JSON patch only",
        ["m"],
        {"m/patch.yaml": "- op: replace\n  path: /spec/state\n  value: Loaded\n"},
        {},
        1,
        "no MilvusCollection",
    ),
    (
        "wrong group",
        ["m"],
        {"m/c.yaml": COLLECTION.replace("milvusops.dev/v1alpha1", "milvus.io/v1")},
        {},
        1,
        "no kind 'MilvusCollection' in 'milvus.io/v1'",
    ),
    (
        "wrong kind",
        ["m"],
        {"m/c.yaml": COLLECTION.replace("kind: MilvusCollection", "kind: MilvusCollections")},
        {},
        1,
        "no kind 'MilvusCollections' in 'milvusops.dev/v1alpha1'",
    ),
    (
        "wrong version",
        ["m"],
        {"m/c.yaml": COLLECTION.replace("v1alpha1", "v1")},
        {},
        1,
        "no kind 'MilvusCollection' in 'milvusops.dev/v1'",
    ),
    ("invalid connection", ["m"], {"m/c.yaml": CONNECTION}, {}, 1, "spec.timeoutSeconds"),
    ("invalid alias", ["m"], {"m/a.yaml": ALIAS.replace("{collectionName: c}", "{}")}, {}, 1, "set exactly one of"),
    ("an alias alone", ["m"], {"m/a.yaml": ALIAS}, {"MILVUSOPS_DEFAULT_URI": "http://127.0.0.1:1"}, 1, "cannot reach"),
    ("duplicate key", ["m"], {"m/c.yaml": COLLECTION + "spec: {collectionName: d}\n"}, {}, 1, "duplicate key 'spec'"),
    ("helm template", ["m"], {"m/c.yaml": "kind: {{ .Values.kind }}\n"}, {}, 1, "a template? render it first"),
    ("missing kubeconfig", ["--live", "--kubeconfig", "k"], {}, {}, 1, "cannot use --kubeconfig k"),
    ("garbage kubeconfig", ["--live", "--kubeconfig", "k"], {"k": "]["}, {}, 1, "cannot use --kubeconfig k"),
    (
        "unreachable API server",
        ["--live", "--kubeconfig", "k"],
        {"k": KUBECONFIG_UNREACHABLE},
        {},
        1,
        "cannot list MilvusCollections",
    ),
    ("--at not a time", ["--at", "tomorrow", "m"], {}, {}, 1, "argument --at: not an RFC 3339 time: 'tomorrow'"),
    ("--at without zone", ["--at", "2026-12-08T07:00:00", "m"], {}, {}, 1, "has no zone: add Z or an offset"),
    ("namespaces not JSON", ["m"], {"m/c.yaml": COLLECTION}, {"MILVUSOPS_NAMESPACES": "a,b"}, 1, "not valid JSON"),
    ("bad number", ["m"], {"m/c.yaml": COLLECTION}, {"MILVUSOPS_RESYNC_SECONDS": "x"}, 1, "MILVUSOPS_RESYNC_SECONDS"),
]


@pytest.mark.parametrize(("name", "argv", "files", "env", "code", "says"), CASES, ids=[case[0] for case in CASES])
def test_input_exit_code_and_message(
    name: str,
    argv: list[str],
    files: dict[str, str],
    env: dict[str, str],
    code: int,
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    for variable in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(variable, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "m").mkdir()
    for path, text in files.items():
        (tmp_path / path).write_text(text)
    stdout = io.StringIO()
    assert cli.main(argv, stdout=stdout) == code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out + stdout.getvalue()
    assert captured.out == ""  # nothing but the report reaches standard output
    where = stdout.getvalue() if stdout.getvalue() else captured.err
    assert says in where, where
    if not stdout.getvalue():
        assert len(captured.err.splitlines()) == 1, captured.err


def test_an_invalid_alias_is_reported_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "a.yaml").write_text(ALIAS.replace("{collectionName: c}", "{}"))
    stdout = io.StringIO()
    assert cli.main([str(tmp_path / "a.yaml"), "-o", "json"], stdout=stdout) == 1
    [row] = json.loads(stdout.getvalue())["resources"]
    assert (row["kind"], row["reason"]) == ("MilvusAlias", "Invalid")


def test_version_and_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("milvusops ")
    assert cli.main(["--help"]) == 0
    assert "Exit code: 0 nothing to do, 2 changes, 1 every error" in capsys.readouterr().out.replace("\n", " ")


def test_base_plans_a_deletion_without_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pull request that only deletes manifests: with --base, the deleted resource is planned (Retain: Milvus
    is left as it is, so nothing to change; nothing is asked of Milvus for it)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "c.yaml").write_text(COLLECTION)
    stdout = io.StringIO()
    assert cli.main(["--base", str(tmp_path / "base"), "-o", "json"], stdout=stdout) == 0
    [deleted] = json.loads(stdout.getvalue())["resources"]
    assert (deleted["name"], deleted["reason"], deleted["calls"]) == ("c", "Deleted", [])
    assert "deletionPolicy Retain: Milvus is left as it is" in deleted["message"]
    assert capsys.readouterr().err == ""
