//! memory-server's end-to-end tests, in one test binary: each module spawns
//! the real `memory-server` binary (`support`) and drives it over HTTP, MCP
//! or stdio. One binary instead of one per file links the dependency graph
//! once, which is most of what building the tests costs
//! (docs/benchmarks.md, "Build and test time").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod bad_input;
mod concurrency;
mod config_env;
mod conversations;
mod data_safety;
mod e2e;
mod embedder_local;
mod embedder_openai;
mod embedder_vertex;
mod extraction;
mod isolation;
mod local_model;
mod logs;
mod mcp;
mod model_binding;
mod openapi;
mod otlp;
mod policy;
mod readme;
mod redis_tls;
mod retrieval_eval;
mod search_modes;
mod sessions;
mod settings_api;
mod supersede;
mod tenancy;
