"""The real test environment: kube-apiserver + etcd built from Go modules, and Milvus from PyPI."""
