//! The AI Orchestra memory server: a REST memory API for AI agents.
//!
//! Layers, outside in:
//! - [`app`]: configuration in, stores and embedder opened, served until SIGTERM;
//! - [`http`]: the REST router and its state, handlers (`http::routes`: parse,
//!   call the service, render), extractors, `/openapi.json`, and what every
//!   response gets on its way out; [`mcp`]: the same operations as MCP tools;
//! - [`shape`], [`auth`]: bodies checked against their published schema, and
//!   API-key authentication;
//! - [`service`]: the memory operations, shared by every transport;
//! - embedders (text to vectors) come from the `providers` crate;
//! - [`model`], [`validate`], [`error`]: data shapes, input checks, the error types;
//! - [`config`], [`telemetry`], [`metrics`]: typed configuration, logs and
//!   traces, metrics (test-only fault injection is `kit::fault`).
//!
//! `scripts/check-module-cycles` keeps these modules free of import circles.
//!
//! Storage, search and replication live in the `vector-index` crate.

pub mod app;
/// API-key auth, shared with the other services (`kit::auth`).
pub use kit::auth;
pub mod config;
pub mod epoch_ms;
pub mod error;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod mcp;
pub mod metrics;
pub mod model;
pub mod service;
pub mod shape;
pub mod validate;
pub mod worker;
