"""The benchmarks' reading of the operator's call metrics (bench/lib/operator_metrics.py)."""

from bench.lib.operator_metrics import calls_by_method, milliseconds_by_method

TEXT = """\
# TYPE milvusops_milvus_call_duration_seconds histogram
milvusops_milvus_call_duration_seconds_bucket{method="get_load_state",outcome="ok",le="0.005"} 3.0
milvusops_milvus_call_duration_seconds_count{method="get_load_state",outcome="ok"} 4.0
milvusops_milvus_call_duration_seconds_sum{method="get_load_state",outcome="ok"} 0.0123
milvusops_milvus_call_duration_seconds_count{method="get_load_state",outcome="failed"} 1.0
milvusops_milvus_call_duration_seconds_sum{method="get_load_state",outcome="failed"} 0.5
milvusops_milvus_call_duration_seconds_count{method="get_metrics",outcome="ok"} 2.0
milvusops_milvus_call_duration_seconds_sum{method="get_metrics",outcome="ok"} 0.0409
"""


def test_call_time_is_summed_per_method_across_outcomes_in_milliseconds() -> None:
    assert milliseconds_by_method(TEXT) == {"get_load_state": 512, "get_metrics": 41}
    assert calls_by_method(TEXT) == {"get_load_state": 5, "get_metrics": 2}
