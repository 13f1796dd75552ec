//! `store-bench`: write throughput, replication lag and startup time of durable
//! collections on the embedded store and on a Redis this tool starts itself.
//!
//! A benchmark, not a test. Redis runs as a child `redis-server` on a free
//! loopback port in a temporary directory (AOF, `appendfsync everysec`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a CLI tool: failing loudly is right

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use vector_index::durable::DurableCollection;
use vector_index::store::{EmbeddedStore, Expect, NewPoint, RedisConfig, RedisStore, Store};
use vector_index::synthetic::clustered;
use vector_index::{CollectionConfig, Payload, Quantization, Uuid};

/// Measures the durable stores.
#[derive(Parser, Debug)]
#[command(name = "store-bench")]
struct Args {
    /// Points for the batched-write and startup runs.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Writes for the one-at-a-time runs.
    #[arg(long, default_value_t = 5_000)]
    single: usize,
    /// Records per batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Replication-lag run: writes per second and seconds.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Replication-lag run length in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Only load `n` points in batches and measure startup (snapshot vs full rebuild).
    #[arg(long)]
    startup_only: bool,
    /// Skip the (slow) full-rebuild startups.
    #[arg(long)]
    skip_rebuild: bool,
    /// Skip the embedded store (Redis only).
    #[arg(long)]
    redis_only: bool,
    /// How the graph stores vectors: f32 (the library's default) or f16 (the memory server's).
    #[arg(long, default_value = "f32")]
    quantization: Quantization,
    /// Construction width (the library's default 128; the memory server's 64).
    #[arg(long, default_value_t = 128)]
    ef_construction: usize,
}

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        std::thread::sleep(Duration::from_millis(300));
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn payload(i: usize) -> Payload {
    let mut p = Payload::new("bench");
    p.created_at = i as i64;
    p
}

fn config(args: &Args) -> CollectionConfig {
    let mut c = CollectionConfig::new(args.dim);
    c.graph.quantization = args.quantization;
    c.graph.ef_construction = args.ef_construction;
    c
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// One-at-a-time writes with `concurrency` in flight; returns writes/s.
async fn single_writes<S: Store>(
    c: &Arc<DurableCollection<S>>,
    data: &[f32],
    dim: usize,
    count: usize,
    concurrency: usize,
) -> f64 {
    let start = Instant::now();
    let per = count / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let c = Arc::clone(c);
            let rows: Vec<Vec<f32>> = (0..per)
                .map(|i| data[((t * per + i) % (data.len() / dim)) * dim..][..dim].to_vec())
                .collect();
            tokio::spawn(async move {
                for (i, row) in rows.iter().enumerate() {
                    c.upsert(Uuid::now_v7(), row, payload(i), Expect::Any)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (per * concurrency) as f64 / start.elapsed().as_secs_f64()
}

/// Batched writes of every row; returns writes/s.
async fn batched_writes<S: Store>(
    c: &DurableCollection<S>,
    data: &[f32],
    dim: usize,
    batch: usize,
) -> f64 {
    let start = Instant::now();
    let rows: Vec<&[f32]> = data.chunks_exact(dim).collect();
    for (b, chunk) in rows.chunks(batch).enumerate() {
        let items = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| NewPoint::new(Uuid::now_v7(), v.to_vec(), payload(b * batch + i)))
            .collect();
        c.upsert_many(items).await.unwrap();
    }
    rows.len() as f64 / start.elapsed().as_secs_f64()
}

/// Opens a following replica and waits until it is ready; returns it and the time taken.
async fn open_replica(
    url: String,
    args: &Args,
) -> (
    Arc<DurableCollection<RedisStore>>,
    tokio::task::JoinHandle<()>,
    Duration,
) {
    let store = RedisStore::connect(RedisConfig::new(url, "bench"))
        .await
        .unwrap();
    let t = Instant::now();
    let (b, task) =
        DurableCollection::open_following(config(args), store.clone(), store.feed().await.unwrap())
            .await
            .unwrap();
    while !b.is_ready() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (b, task, t.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let dim = args.dim;
    let dir: PathBuf = std::env::temp_dir().join(format!("store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    eprintln!("generating {} x {dim} ...", args.n);
    let data = clustered(args.n, dim, (args.n as f64).sqrt() as usize, 0.5, 7);
    println!(
        "store-bench: n={} dim={dim} single={} batch={}",
        args.n, args.single, args.batch
    );

    // Embedded.
    if !args.redis_only {
        let path = dir.join("bench.redb");
        let emb = DurableCollection::open(config(&args), EmbeddedStore::open(&path).unwrap())
            .await
            .unwrap();
        let e1 = if args.startup_only {
            0.0
        } else {
            single_writes(&emb, &data, dim, args.single, 1).await
        };
        let eb = batched_writes(&emb, &data, dim, args.batch).await;
        let t = Instant::now();
        let snap_bytes = emb.snapshot().await.unwrap();
        let e_snap = t.elapsed();
        drop(emb);
        let t = Instant::now();
        let emb = DurableCollection::open(config(&args), EmbeddedStore::open(&path).unwrap())
            .await
            .unwrap();
        let e_from_snap = t.elapsed();
        assert!(emb.replication().restored_from_snapshot);
        let e_points = emb.index().len();
        drop(emb);
        std::fs::remove_file(EmbeddedStore::open(&path).unwrap().snapshot_path()).unwrap();
        let t = Instant::now();
        if !args.skip_rebuild {
            let emb = DurableCollection::open(config(&args), EmbeddedStore::open(&path).unwrap())
                .await
                .unwrap();
            drop(emb);
        }
        let e_rebuild = t.elapsed();
        println!("embedded: single {e1:.0} writes/s, batched {eb:.0} writes/s");
        println!(
            "embedded startup of {e_points} points: from snapshot {:.1} s, full rebuild {:.1} s (snapshot {:.0} MB, taken in {:.1} s)",
            e_from_snap.as_secs_f64(),
            e_rebuild.as_secs_f64(),
            snap_bytes as f64 / 1e6,
            e_snap.as_secs_f64()
        );
    }

    // Redis.
    let redis_dir = dir.join("redis");
    std::fs::create_dir_all(&redis_dir).unwrap();
    let redis = Redis::start(&redis_dir);
    let store = RedisStore::connect(RedisConfig::new(redis.url(), "bench"))
        .await
        .unwrap();
    let (a, _ta) = DurableCollection::open_following(
        config(&args),
        store.clone(),
        store.feed().await.unwrap(),
    )
    .await
    .unwrap();
    let (r1, r16) = if args.startup_only {
        (0.0, 0.0)
    } else {
        (
            single_writes(&a, &data, dim, args.single, 1).await,
            single_writes(&a, &data, dim, args.single * 4, 16).await,
        )
    };
    let rb = batched_writes(&a, &data, dim, args.batch).await;
    println!(
        "redis: single {r1:.0} writes/s (1 in flight), {r16:.0} writes/s (16 in flight), batched {rb:.0} writes/s"
    );

    // Replica startup: full rebuild, then from a snapshot.
    let r_rebuild = if args.skip_rebuild {
        Duration::ZERO
    } else {
        open_replica(redis.url(), &args).await.2
    };
    let t = Instant::now();
    a.snapshot().await.unwrap();
    let r_snap = t.elapsed();
    let (b, _tb, r_from_snap) = open_replica(redis.url(), &args).await;
    assert!(b.replication().restored_from_snapshot);
    let r_points = b.index().len();
    println!(
        "redis replica startup of {r_points} points: from snapshot {:.1} s, full rebuild {:.1} s (snapshot taken and stored in {:.1} s)",
        r_from_snap.as_secs_f64(),
        r_rebuild.as_secs_f64(),
        r_snap.as_secs_f64()
    );
    if args.startup_only {
        drop(redis);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    // Replication lag: A writes at a fixed rate, B watches for each id.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Uuid, Instant)>();
    let watcher = {
        let b = Arc::clone(&b);
        tokio::spawn(async move {
            let mut lags = Vec::new();
            let mut pending: Vec<(Uuid, Instant)> = Vec::new();
            let mut open = true;
            while open || !pending.is_empty() {
                while let Ok(item) = rx.try_recv() {
                    pending.push(item);
                }
                if rx.is_closed() && rx.is_empty() {
                    open = false;
                }
                pending.retain(|(id, at)| {
                    if b.index().contains(*id) {
                        lags.push(at.elapsed());
                        false
                    } else {
                        true
                    }
                });
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            lags
        })
    };
    let total = args.rate * args.seconds;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let start = Instant::now();
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let id = Uuid::now_v7();
        let row = &data[(i as usize % args.n) * dim..][..dim];
        a.upsert(id, row, payload(i as usize), Expect::Any)
            .await
            .unwrap();
        tx.send((id, Instant::now())).unwrap();
    }
    let achieved = total as f64 / start.elapsed().as_secs_f64();
    drop(tx);
    let mut lags = watcher.await.unwrap();
    lags.sort();
    println!(
        "replication lag at {achieved:.0} writes/s over {} writes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lags.len(),
        percentile(&lags, 0.5).as_secs_f64() * 1e3,
        percentile(&lags, 0.99).as_secs_f64() * 1e3,
        lags.last().unwrap().as_secs_f64() * 1e3
    );
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}
