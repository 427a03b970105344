"""Typed views of MilvusCollection / MilvusConnection bodies, parsed once at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel

from milvusops import PAUSED_ANNOTATION, REFRESH_ANNOTATION


class Desired(StrEnum):
    LOADED = "Loaded"
    RELEASED = "Released"


class LoadState(StrEnum):
    """What Milvus's get_load_state reports (plus Unknown when it could not be asked)."""

    NOT_EXIST = "NotExist"
    NOT_LOAD = "NotLoad"
    LOADING = "Loading"
    LOADED = "Loaded"
    UNKNOWN = "Unknown"

    @property
    def held(self) -> bool:
        """Loaded or on its way there: memory Milvus holds or is filling for it."""
        return self in (LoadState.LOADED, LoadState.LOADING)


class ManagementPolicy(StrEnum):
    MANAGE = "Manage"
    OBSERVE = "Observe"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    RELEASE = "Release"


class LoadPriority(StrEnum):
    """spec.load.priority; Milvus 2.6+ reads load_params["load_priority"] as "high" or "low"."""

    HIGH = "High"
    LOW = "Low"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")


class LoadOptions(_Model):
    replicas: int | None = None  # None: keep what Milvus has (`load_options.effective`)
    resource_groups: tuple[str, ...] = ()
    load_fields: tuple[str, ...] = ()
    skip_load_dynamic_field: bool = False
    priority: LoadPriority | None = None


class PartitionSpec(_Model):
    name: str
    state: Desired


class OutsideWindows(StrEnum):
    """spec.schedule.outsideWindows: the state the spec's Loaded partitions take outside every window."""

    RELEASED = "Released"


class Window(_Model):
    """One load window: opens at each `start` (5-field cron, in `time_zone`), stays open `duration_seconds`."""

    start: str
    duration_seconds: int = Field(gt=0)
    time_zone: str


class Schedule(_Model):
    windows: tuple[Window, ...] = ()
    outside_windows: OutsideWindows = OutsideWindows.RELEASED


class CollectionSpec(_Model):
    collection_name: str
    database: str = "default"
    connection_name: str | None = None
    state: Desired | None = None  # None: partitions not listed are left as they are
    partitions: tuple[PartitionSpec, ...] = ()
    load: LoadOptions = LoadOptions()
    management_policy: ManagementPolicy = ManagementPolicy.MANAGE
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    schedule: Schedule | None = None  # None: no windows, the spec's states hold at all times
    # name -> state of spec.partitions: a look-up per partition, not a scan (4,096 x 4,096 per pass)
    _listed: tuple[tuple[PartitionSpec, ...], dict[str, Desired]] | None = PrivateAttr(default=None)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> CollectionSpec:
        spec = dict(body.get("spec") or {})
        spec.setdefault("collectionName", body["metadata"]["name"])
        ref = spec.pop("connectionRef", None) or {}
        return cls.model_validate({**spec, "connectionName": ref.get("name")})

    def model_post_init(self, context: Any, /) -> None:
        self._index()  # built with the spec, so two equal specs stay equal (pydantic compares private attributes)

    def desired_for(self, partition: str) -> Desired | None:
        """The partition's desired state; None: not listed and no spec.state, so the operator leaves it alone."""
        return self._index().get(partition, self.state)

    def _index(self) -> dict[str, Desired]:
        if self._listed is None or self._listed[0] is not self.partitions:  # a model_copy with new partitions
            # the first entry of a name wins, as a scan would find it
            self._listed = (self.partitions, {p.name: p.state for p in reversed(self.partitions)})
        return self._listed[1]

    @property
    def named_partitions(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.partitions)


class ResourceRef(_Model):
    """Identity and bookkeeping of one resource, independent of its spec."""

    namespace: str
    name: str
    uid: str = ""
    generation: int = 0
    created: str = ""
    paused: bool = False
    refresh_requested: str = ""  # the refresh annotation's value: a refresh is due while it differs from lastRefresh

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ResourceRef:
        meta = body["metadata"]
        annotations = meta.get("annotations") or {}
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            created=meta.get("creationTimestamp") or "",
            paused=str(annotations.get(PAUSED_ANNOTATION, "")).lower() == "true",
            refresh_requested=str(annotations.get(REFRESH_ANNOTATION, "")).strip(),
        )


class SecretKeyRef(_Model):
    name: str
    key: str


class TLSSpec(_Model):
    ca_secret_ref: SecretKeyRef | None = None
    server_name: str | None = None


class ConnectionSpec(_Model):
    uri: str
    credentials_secret_ref: SecretKeyRef | None = None
    tls: TLSSpec | None = None
    timeout_seconds: float = Field(10.0, gt=0)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ConnectionSpec:
        spec = dict(body.get("spec") or {})
        creds = spec.get("credentialsSecretRef")
        if creds is not None:
            spec["credentialsSecretRef"] = {"key": "token", **creds}
        tls = spec.get("tls")
        if tls and tls.get("caSecretRef") is not None:
            spec["tls"] = {**tls, "caSecretRef": {"key": "ca.crt", **tls["caSecretRef"]}}
        return cls.model_validate(spec)


DEFAULT = ""  # connection key of the operator's default connection


def connection_key(namespace: str, name: str | None) -> str:
    return DEFAULT if not name else f"{namespace}/{name}"
