"""The operator's own Kubernetes API calls, sessions, manifests and schema checks; knows nothing of Milvus."""
