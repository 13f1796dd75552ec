//! `store-writer`: writes records into an embedded store as fast as it can and
//! prints `ack <n> <version>` after each acknowledged write, numbering from
//! `first-n` (default 0). The crash test
//! kills it with SIGKILL mid-stream and checks every acknowledged write.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper: failing loudly is right

use std::io::Write;

use vector_index::store::{EmbeddedStore, Expect, Store};
use vector_index::{Payload, Uuid};

/// The vector written for record `n` (the crash test recomputes it).
fn vector(n: u64) -> Vec<f32> {
    (0..8).map(|j| (n * 8 + j) as f32).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: store-writer <file.redb> [first-n]");
    let first: u64 = args
        .next()
        .map_or(0, |a| a.parse().expect("first-n is a number"));
    let store = EmbeddedStore::open(&path).expect("open store");
    let mut out = std::io::stdout().lock();
    for n in first.. {
        let mut p = Payload::new("crash");
        p.created_at = n as i64;
        let version = store
            .put(
                Uuid::from_u128(u128::from(n) + 1),
                &vector(n),
                &p,
                Expect::Absent,
            )
            .await
            .expect("write");
        writeln!(out, "ack {n} {version}").expect("stdout");
        out.flush().expect("stdout");
    }
}
