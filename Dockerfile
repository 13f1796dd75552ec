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
COPY . .
RUN cargo build --release --locked -p memory-server --bin memory-server -p orchestrator --bin orchestrator \
 && mkdir -p /out \
 && cp target/release/memory-server target/release/orchestrator /out/

# The memory server: distroless, no shell, runs as uid 65532. Cloud Run sets
# PORT, which the server honours; ORCHESTRA_ENV picks config/<env>.toml.
# checkov:skip=CKV_DOCKER_2:Cloud Run ignores HEALTHCHECK; its startup and liveness probes call /readyz and /healthz, and distroless has no shell to run one
FROM gcr.io/distroless/cc-debian12:nonroot AS memory-server
COPY --from=builder /out/memory-server /usr/local/bin/memory-server
COPY config /etc/ai-orchestra/config
WORKDIR /home/nonroot
USER 65532:65532
ENV PORT=8080
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
