from bench.scenarios.idle_signal import per_collection

# lines as Milvus 2.3.5's proxy wrote them (bench.scenarios.idle_signal, 2026-12-07)
TEXT = """\
# TYPE milvus_proxy_collection_sq_latency_count counter
milvus_proxy_collection_sq_latency_count{collection_name="blue",node_id="1",query_type="search"} 3
milvus_proxy_collection_sq_latency_count{collection_name="live",node_id="1",query_type="query"} 2
milvus_proxy_received_nq{collection_name="live",node_id="1",query_type="search"} 7
milvus_proxy_req_count{function_name="Search",node_id="1",status="success"} 8
milvus_proxy_sq_latency_count{node_id="1",query_type="search"} 8
"""


def test_only_the_read_counters_with_a_collection_label_are_kept() -> None:
    assert per_collection(TEXT) == {
        ("milvus_proxy_collection_sq_latency_count", "blue", "search"): 3.0,
        ("milvus_proxy_collection_sq_latency_count", "live", "query"): 2.0,
        ("milvus_proxy_received_nq", "live", "search"): 7.0,
    }


def test_nothing_is_kept_from_an_answer_that_is_not_prometheus_text() -> None:
    assert per_collection("<html>404</html>\n") == {}
