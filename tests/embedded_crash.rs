//! `kill -9` of a process writing to the embedded store: reopening finds every
//! acknowledged write and no damage.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use vector_index::Uuid;
use vector_index::store::{Cursor, EmbeddedStore, Store};

fn vector(n: u64) -> Vec<f32> {
    (0..8).map(|j| (n * 8 + j) as f32).collect()
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_of_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let mut acked: Vec<(u64, u64)> = Vec::new();
    // Twice: the second writer works on the file the first one died on.
    for first in [0u64, 1_000_000] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_store-writer"))
            .arg(&path)
            .arg(first.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for _ in 0..300 {
            let line = lines.next().expect("writer died early").unwrap();
            let mut parts = line
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse::<u64>().unwrap());
            acked.push((parts.next().unwrap(), parts.next().unwrap()));
        }
        child.kill().unwrap(); // SIGKILL, mid-stream
        child.wait().unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    for (n, version) in &acked {
        let r = store
            .get(Uuid::from_u128(u128::from(*n) + 1))
            .await
            .unwrap();
        let r = r.unwrap_or_else(|| panic!("acknowledged write {n} lost"));
        assert_eq!(
            (r.version, r.vector, r.payload.created_at),
            (*version, vector(*n), *n as i64)
        );
    }
    // The whole file reads back: no half-written record.
    let page = store.scan(Cursor::default(), 1_000_000).await.unwrap();
    assert!(page.records.len() >= acked.len());
    for r in page.records {
        assert_eq!(r.vector, vector(r.payload.created_at as u64));
    }
}
