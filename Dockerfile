# syntax=docker/dockerfile:1
# The operator image: a wheel built in one stage, installed into a slim runtime without compilers.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
# pip trusts the system store (which carries any CA the base image was given), not only its own bundle
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
# the package index the builder's own pip is configured with, when it names one (else pip's default)
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# the dependencies in a layer of their own (a change to the code alone reuses it), each pinned with its
# hash (`make lock`): two builds of one commit install the same files
COPY requirements.lock ./
RUN python3 -m venv /opt/milvusops \
 && /opt/milvusops/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
# the CRDs ship in the package (operator/milvusops/crds links here): `milvusops plan` checks manifests against them
COPY crds ./crds
RUN /opt/milvusops/bin/pip install --no-cache-dir --no-deps . \
 && /opt/milvusops/bin/pip uninstall --yes pip setuptools

FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/* \
 && groupadd --system --gid 65532 milvusops \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin milvusops
COPY --from=build /opt/milvusops /opt/milvusops
ENV PATH=/opt/milvusops/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MILVUSOPS_LIVENESS_PORT=8081 \
    MILVUSOPS_METRICS_PORT=8080
# numeric, so runAsNonRoot can verify it without a passwd lookup; the passwd entry above is for
# getpwuid callers (Kopf's peering identity without POD_ID), which a container runtime does not fake
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["milvusops"]
