"""`milvusops plan`: reads manifests or the cluster, predicts what the operator would do, never acts."""
