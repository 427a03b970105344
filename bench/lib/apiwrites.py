"""Kubernetes writes as counted by the API server itself (/metrics apiserver_request_total)."""

from __future__ import annotations

from collections import Counter

from tests.e2e.helpers import Kube

from bench.lib.scrape import difference, samples

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY", "CREATE", "UPDATE"})
# what the operator (Kopf included) writes; the API server's own lease and endpoint upkeep is reported apart
OPERATOR_RESOURCES = frozenset({"milvuscollections", "milvusconnections", "events"})


def write_counts(kube: Kube) -> Counter[str]:
    """Writes since the API server started, keyed "resource[/subresource] VERB"."""
    method, url, headers, _, _ = kube.api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
    response = kube.api.call_api(method, url, header_params=headers, _request_timeout=30)
    if response.status != 200:
        raise RuntimeError(f"GET /metrics of the API server: HTTP {response.status} {response.reason}")
    text = response.read().decode()
    counts: Counter[str] = Counter()
    for labels, value in samples(text, "apiserver_request_total"):
        if labels.get("verb") in WRITE_VERBS:
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            counts[f"{resource} {labels['verb']}"] += int(value)
    return counts


def split_writes(before: Counter[str], after: Counter[str]) -> tuple[Counter[str], Counter[str]]:
    """(writes to what the operator writes, the control plane's own writes) between two readings."""
    moved = difference(before, after)
    ours = Counter({k: v for k, v in moved.items() if k.split("/")[0].split()[0] in OPERATOR_RESOURCES})
    return ours, moved - ours


def describe(writes: Counter[str]) -> str:
    return ", ".join(f"{key} {int(count)}" for key, count in sorted(writes.items())) or "none"
