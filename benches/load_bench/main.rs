//! `load-bench`: an HTTP load run against a running memory server.
//!
//! Phases: batched loading of `--memories` memories, single creates at full
//! concurrency, searches at a fixed open-loop rate (`--rate`), and searches at
//! saturation. Prints throughput and latency percentiles per phase. A benchmark,
//! not a test: point it at a server you started (see docs/benchmarks.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a CLI tool: failing loudly is right

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use memory_client::{MemoryClient, NewMemory, SearchMode, SearchRequest};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::Mutex;

#[path = "../common/text.rs"]
mod text;

/// Load-tests a memory server.
#[derive(Parser, Debug)]
#[command(name = "load-bench")]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key, if the server needs one.
    #[arg(long)]
    key: Option<String>,
    /// Namespace to load (use a fresh one per run).
    #[arg(long, default_value = "load-bench")]
    namespace: String,
    /// Memories to load in batches before searching.
    #[arg(long, default_value_t = 100_000)]
    memories: usize,
    /// Memories per batch request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Single creates to time.
    #[arg(long, default_value_t = 5_000)]
    creates: usize,
    /// Requests in flight for the closed-loop phases.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Searches per second in the fixed-rate phase.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Seconds of each search phase.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Search mode: vector, keyword or hybrid (the server's default when absent).
    #[arg(long, value_parser = parse_mode)]
    mode: Option<SearchMode>,
}

fn parse_mode(s: &str) -> Result<SearchMode, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}`: use vector, keyword or hybrid"))
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn report(name: &str, mut lat: Vec<Duration>, errors: usize, elapsed: Duration) {
    lat.sort();
    println!(
        "{name}: {} ok, {errors} errors in {:.1} s = {:.0}/s; latency ms p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}",
        lat.len(),
        elapsed.as_secs_f64(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
}

fn query(ns: &str, mode: Option<SearchMode>, rng: &mut StdRng) -> SearchRequest {
    SearchRequest {
        namespace: ns.into(),
        query: Some(text::query(rng)),
        top_k: Some(10),
        mode,
        ..SearchRequest::default()
    }
}

/// Runs `total` operations (or until `deadline`) from `concurrency` workers;
/// returns latencies, errors and time.
async fn closed_loop<F, Fut>(
    concurrency: usize,
    total: usize,
    deadline: Option<Instant>,
    op: F,
) -> (Vec<Duration>, usize, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, next) = (Arc::clone(&op), Arc::clone(&next));
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total || deadline.is_some_and(|d| Instant::now() >= d) {
                        return (lat, errors);
                    }
                    let t = Instant::now();
                    if op(i).await {
                        lat.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            })
        })
        .collect();
    let (mut lat, mut errors) = (Vec::new(), 0);
    for w in workers {
        let (l, e) = w.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    (lat, errors, started.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let mut client = MemoryClient::new(&args.url).unwrap();
    if let Some(k) = &args.key {
        client = client.with_key(k);
    }
    let ns = args.namespace.clone();
    let mode = args.mode;
    println!(
        "load-bench: url={} memories={} batch={} creates={} concurrency={} rate={}/s seconds={} mode={}",
        args.url,
        args.memories,
        args.batch,
        args.creates,
        args.concurrency,
        args.rate,
        args.seconds,
        mode.map_or("server default".to_owned(), |m| format!("{m:?}")
            .to_lowercase())
    );

    // 1. Batched load.
    let batches = args.memories.div_ceil(args.batch);
    let (c, ns2, batch, total) = (client.clone(), ns.clone(), args.batch, args.memories);
    let (lat, errors, elapsed) = closed_loop(args.concurrency.min(4), batches, None, move |b| {
        let (c, ns) = (c.clone(), ns2.clone());
        async move {
            let mut rng = StdRng::seed_from_u64(b as u64);
            let n = batch.min(total - b * batch);
            let memories = (0..n)
                .map(|_| NewMemory {
                    namespace: ns.clone(),
                    text: text::memory(&mut rng),
                    ..NewMemory::default()
                })
                .collect();
            c.create_many(memories).await.is_ok()
        }
    })
    .await;
    println!(
        "batched load: {} memories in {:.1} s = {:.0} memories/s ({errors} failed batches; batch latency p50 {:.1} ms)",
        args.memories,
        elapsed.as_secs_f64(),
        args.memories as f64 / elapsed.as_secs_f64(),
        {
            let mut l = lat.clone();
            l.sort();
            pct(&l, 0.5)
        }
    );

    // 2. Single creates.
    let (c, ns2) = (client.clone(), ns.clone());
    let (lat, errors, elapsed) = closed_loop(args.concurrency, args.creates, None, move |i| {
        let (c, ns) = (c.clone(), ns2.clone());
        async move {
            let mut rng = StdRng::seed_from_u64(1_000_000 + i as u64);
            c.create(&NewMemory {
                namespace: ns,
                text: text::memory(&mut rng),
                ..NewMemory::default()
            })
            .await
            .is_ok()
        }
    })
    .await;
    report("single creates", lat, errors, elapsed);

    // 3. Searches at a fixed rate (open loop: a slow answer does not slow the sender).
    let total = (args.rate * args.seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let results = Arc::new(Mutex::new((Vec::with_capacity(total), 0usize)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        tokio::time::sleep_until((started + interval * i as u32).into()).await;
        let (c, ns, results) = (client.clone(), ns.clone(), Arc::clone(&results));
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(2_000_000 + i as u64);
            let t = Instant::now();
            let ok = c.search(&query(&ns, mode, &mut rng)).await.is_ok();
            let mut r = results.lock().await;
            if ok {
                r.0.push(t.elapsed());
            } else {
                r.1 += 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let (lat, errors) = std::mem::take(&mut *results.lock().await);
    report(&format!("search at {}/s", args.rate), lat, errors, elapsed);

    // 4. Searches at saturation.
    let (c, ns2) = (client.clone(), ns.clone());
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let (lat, errors, elapsed) = closed_loop(args.concurrency, usize::MAX, Some(until), move |i| {
        let (c, ns) = (c.clone(), ns2.clone());
        async move {
            let mut rng = StdRng::seed_from_u64(3_000_000 + i as u64);
            c.search(&query(&ns, mode, &mut rng)).await.is_ok()
        }
    })
    .await;
    report("search at saturation", lat, errors, elapsed);
}
