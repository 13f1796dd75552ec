//! End-to-end tests of the orchestrator: the real binary (and memory-server's,
//! and redis-server) on loopback ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agents;
mod api;
mod instances;
mod local_model;
mod memory;
mod support;
