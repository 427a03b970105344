"""A SCALE STAND-IN, NOT A MILVUS: a gRPC server answering as Milvus 2.3.5 after fitted latencies (server.py)."""
