"""`milvusops plan`: what the operator would do to Milvus for some manifests, without changing Milvus."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from pydantic import SecretStr, ValidationError

from milvusops import GROUP, VERSION, version
from milvusops.core.alias_model import AliasSpec, CollectionView
from milvusops.core.conflicts import Claimant, claimant, claims_collection, conflict_key, conflict_winner
from milvusops.core.failures import FailureError
from milvusops.core.model import CollectionSpec, DeletionPolicy, ResourceRef
from milvusops.core.plan import deletion_release
from milvusops.core.schedule import timed
from milvusops.kube import manifests, schema
from milvusops.kube.api import KubeApi
from milvusops.preview import aliases as alias_preview
from milvusops.preview import planview, rows
from milvusops.preview.readonly import ReadOnlyPorts, predict
from milvusops.runtime.capacity_guard import MemoryGuard
from milvusops.runtime.connections import Connections
from milvusops.runtime.observe import observe
from milvusops.runtime.reconcile import assess
from milvusops.runtime.settings import InvalidSettings, Settings, load, memory_guard


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, exit 1 (argparse prints usage and exits 2: a CI gate would read "changes")."""
        raise _UsageError(f"{message} (milvusops plan --help)")


def parser() -> argparse.ArgumentParser:
    parse = _Parser(
        prog="milvusops plan",
        description="Show what the operator would do in Milvus for MilvusCollection manifests, changing nothing."
        " Exit code: 0 nothing to do, 2 changes, 1 every error (usage, unusable input, invalid manifests, failures"
        " the operator would report). The report alone goes to standard output; messages go to standard error.",
    )
    parse.add_argument("--version", action="version", version=f"milvusops {version()}")
    parse.add_argument(
        "--fail-on-destructive",
        action="store_true",
        help="exit 1 when a change would take something out of search: a release of a loaded partition or"
        " collection, fewer replicas (marked 'destructive' in every output)",
    )
    parse.add_argument("paths", nargs="*", help="manifest files, directories (*.yaml, *.yml, *.json), or - for stdin")
    parse.add_argument(
        "--base",
        action="append",
        default=[],
        help="the manifests as they were (e.g. the target branch's folder; repeatable): MilvusCollections found"
        " there but not in PATHS are planned as deletions, with what their deletionPolicy would release",
    )
    parse.add_argument("--live", action="store_true", help="the MilvusCollections in the cluster instead of files")
    parse.add_argument(
        "--at",
        type=_moment,
        help="plan for this moment (RFC 3339 with a zone, e.g. 2026-12-08T06:00:00Z): spec.schedule's windows"
        " are applied as they stand then, against Milvus as it is now (default: now)",
    )
    parse.add_argument("-o", "--output", choices=sorted(planview.RENDERERS), default="table")
    parse.add_argument(
        "-n",
        "--namespace",
        help="namespace of manifests without one (default: default); with --live: only this namespace (default: all)",
    )
    parse.add_argument(
        "--milvus-uri",
        help="read this Milvus for every resource, whatever its connectionRef"
        " (default: MILVUSOPS_DEFAULT_URI, and each connectionRef from the cluster)",
    )
    parse.add_argument(
        "--token", help="token for --milvus-uri (visible in process lists: prefer MILVUSOPS_DEFAULT_TOKEN)"
    )
    parse.add_argument(
        "--kubeconfig",
        help="cluster to read MilvusConnections, Secrets and (--live) MilvusCollections"
        " from (default: KUBECONFIG, ~/.kube/config or in-cluster)",
    )
    return parse


def main(argv: Sequence[str], stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, sys.stderr
    try:
        args = parser().parse_args(argv)
    except _UsageError as exc:
        err.write(f"milvusops plan: {exc}\n")
        return rows.ERRORS
    except SystemExit as exc:  # --help and --version
        return rows.NOTHING if exc.code in (0, None) else rows.ERRORS
    if args.live == bool(args.paths or args.base) or (args.live and args.base):
        err.write("milvusops plan: give manifest paths (or - for stdin, or --base), or --live, not both\n")
        return rows.ERRORS
    try:
        # client libraries print warnings to standard output: it holds the report alone (-o json must parse)
        with contextlib.redirect_stdout(err):
            report = asyncio.run(_plan(args, stdin))
    except (manifests.ManifestError, _NoCluster, InvalidSettings) as exc:
        err.write(f"milvusops plan: {exc}\n")
        return rows.ERRORS
    except Exception as exc:  # noqa: BLE001 - any other failure: one line a CI log shows, never a traceback
        err.write(f"milvusops plan: {type(exc).__name__}: {' '.join(str(exc).split())}\n")
        return rows.ERRORS
    out.write(planview.RENDERERS[args.output](report))
    return report.exit_code


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no zone: add Z or an offset such as +01:00")
    return moment


class _NoCluster(Exception):
    """--live without a cluster to read."""


async def _plan(args: argparse.Namespace, stdin: TextIO | None) -> rows.Report:
    settings = load()  # the operator's environment: MILVUSOPS_*
    if args.milvus_uri:
        token = SecretStr(args.token) if args.token is not None else settings.default_token
        settings = settings.model_copy(update={"default_uri": args.milvus_uri, "default_token": token})
    kube = _kube(args.kubeconfig)
    try:
        if args.live:
            if kube is None:
                raise _NoCluster("--live needs a cluster: give --kubeconfig, set KUBECONFIG, or run in a pod")
            try:
                listed = await kube.list_collections(args.namespace)
            except Exception as exc:
                raise _NoCluster(f"cannot list MilvusCollections: {' '.join(str(exc).split())}") from exc
            inputs = Inputs([("cluster", body) for body in listed])
        else:
            inputs = _from_files(args.paths, args.namespace or "default", stdin) if args.paths else Inputs([])
            if args.base:
                inputs.deleted = _deleted(_from_files(args.base, args.namespace or "default", None), inputs)
        with tempfile.TemporaryDirectory(prefix="milvusops-plan-") as tls_dir:
            pool = Connections(settings, kube, Path(tls_dir), inputs.connections)
            try:
                ports = ReadOnlyPorts(pool, ignore_refs=bool(args.milvus_uri))
                planner = _Planner(settings, args.milvus_uri or "", ports, args.at or datetime.now(UTC))
                previews = await planner.previews(inputs.collections, validate=not args.live)
                planned = {
                    _key(body): (body, item) for (_, body), item in zip(inputs.collections, previews, strict=True)
                }
                previews += await planner.deletions(inputs.deleted, inputs.collections)
                previews += await planner.aliases(inputs.aliases, planned)
            finally:
                pool.close()
        return rows.Report(
            inputs.invalid + previews,
            tuple(inputs.skipped),
            empty=not inputs.collections and not inputs.deleted and not inputs.aliases,
            fail_on_destructive=args.fail_on_destructive,
        )
    finally:
        if kube is not None:
            kube.close()


def _kube(kubeconfig: str | None) -> KubeApi | None:
    """A cluster client if one can be configured; `plan` of files works without one."""
    configured = kubeconfig or os.environ.get("KUBECONFIG") or os.environ.get("KUBERNETES_SERVICE_HOST")
    if not configured and not Path("~/.kube/config").expanduser().exists():
        return None  # the client would print a warning to stdout and fail anyway
    try:
        return KubeApi(kubeconfig=kubeconfig)
    except Exception as exc:
        if kubeconfig:
            raise _NoCluster(f"cannot use --kubeconfig {kubeconfig}: {' '.join(str(exc).split())}") from exc
        return None


@dataclass
class Inputs:
    """What the input holds: MilvusCollections to plan, documents that are errors, documents skipped."""

    collections: list[tuple[str, Mapping[str, Any]]]
    invalid: list[rows.ResourcePreview] = field(default_factory=list)
    skipped: list[rows.Skipped] = field(default_factory=list)
    deleted: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)  # in --base, not in the paths
    connections: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)  # valid ones, by ns/name
    aliases: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)  # valid MilvusAliases


def _deleted(base: Inputs, now: Inputs) -> list[tuple[str, Mapping[str, Any]]]:
    """MilvusCollections of the base that the paths no longer have (by namespace and name); valid ones only."""
    kept = {_key(body) for _, body in now.collections}
    return [(source, body) for source, body in base.collections if _key(body) not in kept and not _errors(body)]


def _key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _from_files(paths: list[str], namespace: str, stdin: TextIO | None) -> Inputs:
    reading = manifests.read(paths, stdin)
    inputs = Inputs([])
    for unusable in reading.unusable:
        if unusable.error:
            inputs.invalid.append(rows.invalid(unusable.source, "", "", [unusable.reason]))
        else:
            inputs.skipped.append(rows.Skipped(unusable.source, unusable.reason))
    for item in reading.manifests:
        metadata = {"namespace": namespace, **(item.body.get("metadata") or {})}
        body = {**item.body, "metadata": metadata}
        if not manifests.ours(body):
            inputs.skipped.append(rows.Skipped(item.source, f"{manifests.kind_of(body)}: not planned"))
        elif body.get("kind") == "MilvusCollection" and body.get("apiVersion") == f"{GROUP}/{VERSION}":
            inputs.collections.append((item.source, body))  # validated with the others, in input order
        else:  # a MilvusConnection is checked as the API server would; a wrong group, kind or version is an error
            errors = schema.validate(body)
            if errors:
                kind = str(body.get("kind") or "")
                inputs.invalid.append(
                    rows.invalid(item.source, metadata["namespace"], metadata.get("name", ""), errors, kind)
                )
            elif body.get("kind") == "MilvusAlias":  # checked as the API server would, then previewed
                inputs.aliases.append((item.source, body))
            else:  # a valid MilvusConnection: the collections that name it are read through it
                inputs.connections[(metadata["namespace"], metadata.get("name", ""))] = body
                inputs.skipped.append(rows.Skipped(item.source, f"{manifests.kind_of(body)}: used, not planned"))
    return inputs


class _Planner:
    def __init__(self, settings: Settings, milvus_uri: str, ports: ReadOnlyPorts, at: datetime) -> None:
        self.settings = settings
        self.at = at  # the moment spec.schedule is applied at
        self.memory = MemoryGuard(memory_guard(settings))  # as the operator would decide, with its settings
        self.milvus_uri = milvus_uri
        self.ports = ports

    async def previews(self, found: list[tuple[str, Mapping[str, Any]]], validate: bool) -> list[rows.ResourcePreview]:
        """In input order: invalid manifests as the API server would word it, the others assessed concurrently."""
        checked = [(source, body, _errors(body) if validate else []) for source, body in found]
        owners: dict[tuple[str, str, str], list[Claimant]] = {}
        for _, body, errors in checked:
            if not errors and claims_collection(body):
                owners.setdefault(conflict_key(body), []).append(claimant(body))
        return list(
            await asyncio.gather(*(self._one(source, body, errors, owners) for source, body, errors in checked))
        )

    async def _one(
        self, source: str, body: Mapping[str, Any], errors: list[str], owners: Mapping[Any, list[Claimant]]
    ) -> rows.ResourcePreview:
        if errors:
            meta = body.get("metadata") or {}
            return rows.invalid(source, meta.get("namespace", ""), meta.get("name", ""), errors)
        ref = ResourceRef.from_body(body)
        spec, window, invalid = timed(CollectionSpec.from_body(body), self.at)
        winner = conflict_winner(body, owners)
        outcome, _ = await assess(spec, ref, self.ports, winner, act=predict, memory=self.memory, invalid=invalid)
        outcome = replace(outcome, schedule=window)
        line = rows.window_line(window, self.at)
        return rows.preview(source, spec, ref, self._connection(spec.connection_name, ref), outcome, line)

    async def deletions(
        self, deleted: list[tuple[str, Mapping[str, Any]]], remaining: list[tuple[str, Mapping[str, Any]]]
    ) -> list[rows.ResourcePreview]:
        """What deleting each resource would do in Milvus: its deletionPolicy, and for Release the one call."""
        claims: dict[tuple[str, str, str], list[CollectionSpec]] = {}
        for _, body in remaining:  # what the remaining resources declare Loaded is handed over, not released
            if not _errors(body) and claims_collection(body):
                claims.setdefault(conflict_key(body), []).append(CollectionSpec.from_body(body))
        return list(await asyncio.gather(*(self._deletion(source, body, claims) for source, body in deleted)))

    async def _deletion(
        self, source: str, body: Mapping[str, Any], claims: Mapping[Any, list[CollectionSpec]]
    ) -> rows.ResourcePreview:
        spec, ref = CollectionSpec.from_body(body), ResourceRef.from_body(body)
        connection = self._connection(spec.connection_name, ref)
        if spec.deletion_policy != DeletionPolicy.RELEASE:
            return rows.deletion(source, spec, ref, connection, None, (), None)
        try:
            port = await self.ports.port(ref.namespace, spec.connection_name, spec.database)
            observed = await observe(port, spec.collection_name)
        except FailureError as exc:
            return rows.deletion(source, spec, ref, connection, None, (), exc.failure)
        others = tuple(claims.get(conflict_key(body), ()))
        action, handed_over = deletion_release(spec, observed, others)
        return rows.deletion(source, spec, ref, connection, observed, (action,) if action else (), None, handed_over)

    async def aliases(
        self, found: list[tuple[str, Mapping[str, Any]]], planned: alias_preview.Planned
    ) -> list[rows.ResourcePreview]:
        """Each MilvusAlias against Milvus as it is and the input's MilvusCollections as they would be."""
        views = alias_preview.views_of(planned)
        return list(await asyncio.gather(*(self._alias(source, body, views) for source, body in found)))

    async def _alias(
        self, source: str, body: Mapping[str, Any], views: Mapping[tuple[str, str], CollectionView]
    ) -> rows.ResourcePreview:
        spec, ref = AliasSpec.from_body(body), ResourceRef.from_body(body)
        connection = self._connection(spec.connection_name, ref)
        try:
            port = await self.ports.port(ref.namespace, spec.connection_name, spec.database)
            reads = await self.ports.aliases(ref.namespace, spec.connection_name, spec.database)
        except FailureError as exc:
            return alias_preview.failed(source, body, connection, exc.failure)
        return await alias_preview.preview_alias(source, body, views, port, reads, connection, self.at)

    def _connection(self, name: str | None, ref: ResourceRef) -> str:
        """Which connection is read, in words; never its token."""
        if self.milvus_uri:
            return f"--milvus-uri {self.milvus_uri}"
        if name is None:
            return f"the default connection {self.settings.default_uri}"
        return f"MilvusConnection {ref.namespace}/{name}"


def _errors(body: Mapping[str, Any]) -> list[str]:
    errors = schema.validate(body)
    if not errors:
        try:
            CollectionSpec.from_body(body)
        except ValidationError as exc:  # the schema should have caught it: say so in pydantic's words
            errors = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return errors
