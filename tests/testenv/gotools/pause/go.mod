module milvus-operator.testenv/pause

go 1.26.0
