"""What Milvus says about a collection's search traffic: is there a per-collection signal idle release could trust?

`python -m bench.scenarios.idle_signal`: a fresh Milvus 2.3.5 standalone, a collection `blue` with an alias
`live`; searches and queries sent through each name; then every metrics endpoint of the Milvus process is
scraped and its per-collection read counters printed. A measurement, not a test: what it found, and why
`releaseAfterIdle` is left out, is in docs/design/idle-release.md.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from pymilvus import DataType, MilvusClient
from tests.testenv.milvus import MilvusServer

READ_COUNTERS = ("milvus_proxy_collection_sq_latency_count", "milvus_proxy_received_nq")
SAMPLE = re.compile(r"^(?P<name>\w+)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


def per_collection(text: str) -> dict[tuple[str, str, str], float]:
    """(metric, collection_name label, query_type label) -> value, for the read counters of a Prometheus text."""
    found: dict[tuple[str, str, str], float] = {}
    for line in text.splitlines():
        sample = SAMPLE.match(line)
        if sample is None or sample["name"] not in READ_COUNTERS:
            continue
        labels = dict(LABEL.findall(sample["labels"]))
        if "collection_name" in labels:
            key = (sample["name"], labels["collection_name"], labels.get("query_type", ""))
            found[key] = float(sample["value"])
    return found


def listening_ports(pids: Iterable[int]) -> list[int]:
    """TCP ports the given processes listen on (`ss -ltnp`)."""
    wanted = {f"pid={pid}," for pid in pids}
    listing = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return sorted(
        int(line.split()[3].rsplit(":", 1)[1]) for line in listing.splitlines() if any(w in line for w in wanted)
    )


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""  # the gRPC port and other listeners answer no HTTP


def traffic(client: MilvusClient) -> dict[str, int]:
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection("blue", schema=schema, index_params=index)
    client.insert("blue", [{"id": i, "v": [0.1 * i] * 4} for i in range(10)])
    client.load_collection("blue")
    client.create_alias("blue", "live")
    sent = {"search via live": 5, "search via blue": 3, "query via live": 2}
    for _ in range(sent["search via live"]):
        client.search("live", [[0.1] * 4], limit=1)
    for _ in range(sent["search via blue"]):
        client.search("blue", [[0.1] * 4], limit=1)
    for _ in range(sent["query via live"]):
        client.query("live", filter="id >= 0", limit=1)
    return sent


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="milvusops-idle-") as workdir:
        server = MilvusServer(Path(workdir) / "milvus")
        server.start()
        try:
            client = server.client()
            print("sent:", traffic(client), "| server", client.get_server_version())
            client.close()
            found = subprocess.run(["pgrep", "-f", workdir], capture_output=True, text=True, check=False)
            pids = [int(pid) for pid in found.stdout.split()]
            for port in listening_ports(pids):
                for (metric, name, kind), value in sorted(per_collection(scrape(port)).items()):
                    print(f"port {port}: {metric}{{collection_name={name!r}, query_type={kind!r}}} = {value:g}")
        finally:
            server.stop(grace=1)


if __name__ == "__main__":
    main()
