//! The AI Orchestra memory server: a REST memory API for AI agents.
//!
//! Layers, outside in:
//! - [`app`]: configuration in, router built, served until SIGTERM;
//! - [`routes`]: HTTP handlers (parse, call the service, render); [`respond`]:
//!   what every response gets on its way out;
//! - [`extract`], [`shape`], [`auth`]: request parsing (bodies checked against
//!   the published schema) and API-key authentication;
//! - [`service`]: the memory operations, shared by every transport;
//! - [`embed`]: text to vectors;
//! - [`model`], [`validate`], [`error`]: data shapes, input checks, the error type;
//! - [`config`], [`telemetry`], [`metrics`]: typed configuration, logs and metrics.
//!
//! Storage, search and replication live in the `vector-index` crate.

pub mod app;
pub mod auth;
pub mod config;
pub mod embed;
pub mod error;
pub mod extract;
pub mod fault;
pub mod mcp;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod respond;
pub mod routes;
pub mod service;
pub mod shape;
pub mod telemetry;
pub mod validate;
