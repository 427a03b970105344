"""Operator configuration from environment variables (MILVUSOPS_*), built once at startup."""

from __future__ import annotations

import random
import re
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from milvusops.core.memory_estimate import GuardSettings
from milvusops.kube.sharding import check_selector

# an explicit priority at or above this wins over every replica with a random one (e.g. a debugging run)
PRIORITY_CEILING = 1_000_000_000


def random_priority() -> int:
    return random.randint(1, PRIORITY_CEILING - 1)  # noqa: S311 - a tie-breaker, not a secret


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MILVUSOPS_", env_nested_delimiter="__", cli_kebab_case=True, cli_prog_name="milvusops"
    )

    namespaces: list[str] = Field(default_factory=list, description="watched namespaces; empty = all")
    watch_label_selector: str = Field(
        "",
        description="serve only MilvusCollections matching this label selector (a shard), e.g."
        " sharding.milvusops.dev/key=shard1 or !sharding.milvusops.dev/key; empty = all",
    )
    # a connection's finalizer has one owner: with several shards, exactly one of them serves MilvusConnections
    serve_connections: bool = Field(
        True, description="serve MilvusConnections (status, finalizer) and MilvusAliases; false on every shard but one"
    )
    default_uri: str = Field("http://127.0.0.1:19530", description="Milvus URI of the default connection")
    default_token: SecretStr = Field(
        SecretStr(""), description="token (user:password or API key) of the default connection"
    )
    default_timeout_seconds: float = Field(10.0, gt=0)
    resync_seconds: float = Field(30.0, gt=0, description="how often every resource is re-observed")
    full_observation_seconds: float = Field(
        300.0, ge=0, description="in sync, list partitions and collection ids again at least this often"
    )
    # 1,000 two-partition resources confirmed every 30 s take 67 calls/s: from there up, the 300 s ceiling holds
    steady_calls_per_second: float = Field(
        50.0,
        ge=0,
        description="Milvus calls per second per connection for resources in sync: confirmations first, full "
        "observations with what is left (every resync at best, full_observation_seconds at worst; 0 = always that)",
    )
    status_heartbeat_seconds: float = Field(
        0.0, ge=0, description="refresh lastSyncTime at most this often even when nothing changed; 0 = only on change"
    )
    loading_recheck_seconds: float = Field(2.0, gt=0, description="re-check interval while something is Loading")
    deletion_timeout_seconds: float = Field(300.0, gt=0, description="give up releasing on delete after this")
    api_timeout_seconds: float = Field(
        10.0, gt=0, description="connect and read timeout of each API server call the operator makes itself"
    )
    # Kopf's own requests (watch streams, finalizer patches) retry without end; the pause between tries grows to this
    api_retry_max_seconds: float = Field(
        10.0, gt=0, description="longest pause between Kopf's retries of a failed API server request (never gives up)"
    )
    # a lost node's replica reads as served until its session expires (TTL, 30 s): a pass must come after that
    replicas_settle_seconds: float = Field(
        120.0,
        ge=0,
        description="after a server's query nodes change, confirmations ask their replicas again for this long "
        "(at least Milvus's session TTL plus two resync intervals)",
    )
    max_concurrent_calls: int = Field(8, ge=1, description="concurrent Milvus calls per connection")
    # the call threads are shared by every connection (8 connections' worth); a burst's threads do not stay for good
    call_thread_linger_seconds: float = Field(
        30.0, gt=0, description="a thread for Milvus calls that had no work for this long ends"
    )
    # Milvus before 2.5 runs describe, list, index, statistics, load and release requests one at a time: more
    # in flight only wait in its queue, holding slots that get_load_state re-checks need (1,000 burst: 0 Ready)
    max_queued_calls: int | None = Field(
        None,
        ge=1,
        description="of those, at most this many that Milvus queues (describe, list, load, release ...); "
        "default: 2 before Milvus 2.5, all from 2.5",
    )
    # each connection costs a TLS handshake and buffers on both ends; a burst of 1,000 new resources opened ~270
    api_connections: int = Field(
        32, ge=0, description="concurrent API server requests of Kopf, besides its watch streams; 0 = unbounded"
    )
    memory_guard: bool = Field(
        True, description="refuse a load whose estimated memory does not fit in the query nodes' free memory (on|off)"
    )
    # Milvus 2.3.5's query nodes refuse a segment past 90% of their memory (overloadedMemoryThresholdPercentage)
    memory_headroom_percent: float = Field(
        10.0, ge=0, lt=100, description="percent of each query node's memory the capacity guard keeps free"
    )
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int = Field(8080, ge=0, le=65535, description="0 disables the metrics endpoint")
    liveness_port: int = Field(8081, ge=0, le=65535, description="0 disables the liveness endpoint")
    standalone: bool = Field(False, description="no peering (one replica); otherwise Kopf peering is used")
    # random per process: a Deployment's replicas share one environment, and Kopf pauses all peers of equal priority
    peering_priority: int = Field(
        default_factory=random_priority,
        description="Kopf peering priority: the live peer with the highest one acts; default: random, below 10^9",
    )
    peering_name: str = Field(
        "default",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description="name of the (Cluster)KopfPeering object shared by the replicas",
    )
    # like the 30 s resync: a crash delays reconciling by at most one resync, at one PATCH per replica per 20-25 s
    peering_lifetime_seconds: int = Field(
        30,
        ge=10,  # Kopf renews 5-10 s before expiry: a shorter lifetime leaves no margin for a slow API server
        description="how long a replica that stopped renewing its peering record (crashed) still blocks the others",
    )

    @field_validator("watch_label_selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        return check_selector(value)


def memory_guard(settings: Settings) -> GuardSettings:
    return GuardSettings(settings.memory_guard, settings.memory_headroom_percent)


class InvalidSettings(Exception):
    """A MILVUSOPS_* value (or flag) that cannot be used, in one line naming each variable."""


def load(args: list[str] | None = None) -> Settings:
    """The settings from the environment, and from flags when `args` is given; a bad value is `InvalidSettings`."""
    try:
        return Settings(_cli_parse_args=args) if args is not None else Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        raise InvalidSettings(
            "; ".join(f"MILVUSOPS_{'__'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        ) from exc
    except SettingsError as exc:  # pydantic-settings could not decode a value before validating it
        field = re.search(r'field "([^"]+)"', str(exc))
        name = f"MILVUSOPS_{field.group(1).upper()}" if field else "a MILVUSOPS_ variable"
        raise InvalidSettings(f'{name}: not valid JSON (lists are JSON, e.g. ["team-a", "team-b"])') from exc
