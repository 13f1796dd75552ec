//! The orchestration service: runs agents for applications, keeps their
//! conversations, and gives them memory.
//!
//! A request flows through these modules, each doing one thing:
//!
//! | module | does |
//! |---|---|
//! | [`http`] | routes, auth checks, SSE streams, the OpenAPI document |
//! | [`runs`] | a run's life: claiming its thread, lease, cancel, finish, takeover |
//! | [`engine`] | executing agents: `llm` tool loops, `router`, `sequential`, `parallel`, `loop` |
//! | [`tools`] | the built-in tools (memory search / store / context, `exit_loop`) |
//! | [`mcp_tools`] | tools of remote MCP servers (rmcp's client), allowlisted, scope pinned |
//! | [`memory`] | the link to memory-server (recall, write-back) |
//! | [`events`] | numbered run events, stored and announced |
//! | [`store`] | threads, messages, runs and events as records in the shared store |
//! | [`agents`] | the agents file, read and checked once |
//! | [`config`] | the service's settings, loaded once |
//! | [`error`] | the one error type and its HTTP form |
//! | [`metrics`] | Prometheus metrics |
//! | [`app`] | wiring and serving |
//!
//! Chat models come from `providers::chat`; the wire types from
//! `orchestrator-api`. Dependencies point one way: `http` → `runs` →
//! `engine` → `tools` / `memory` → `memory-client`.

pub mod agents;
pub mod app;
pub mod config;
pub mod engine;
pub mod error;
pub mod events;
pub mod http;
pub mod mcp_tools;
pub mod memory;
pub mod metrics;
pub mod runs;
pub mod store;
pub mod tools;
