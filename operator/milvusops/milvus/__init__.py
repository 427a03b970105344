"""The Milvus adapter: the only importer of pymilvus and grpc; knows nothing of Kubernetes."""
