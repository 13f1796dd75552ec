//! vector-index's integration tests, in one test binary: collections,
//! stores (embedded and a real `redis-server` each test starts), replication,
//! snapshots, faults and keyword search. One binary instead of one per file
//! links the dependency graph once (docs/benchmarks.md, "Build and test time").
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

mod bad_input;
mod concurrency;
mod faults;
mod keyword;
mod randomized;
mod recall;
mod redis_tls;
mod replication;
mod snapshot;
mod snapshot_restart;
mod store_conformance;
