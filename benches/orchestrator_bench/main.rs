//! `orchestrator-bench`: what the orchestrator adds to a run, measured
//! against running orchestrator and memory-server processes.
//!
//! Phases: (1) sequential runs, whose overhead is the request's latency minus
//! the model time and the memory time the run's own events report;
//! (2) runs per second with `--concurrency` closed-loop workers, each on its
//! own thread; (3) time from a streamed run's request to its first SSE event;
//! (4) the resident memory an idle thread costs (`--pid`). A benchmark, not a
//! test: `scripts/bench-orchestrator` starts the processes with a scripted
//! model of fixed latency and runs it (docs/benchmarks.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a CLI tool: failing loudly is right

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

/// Benchmarks a running orchestrator.
#[derive(Parser, Debug)]
#[command(name = "orchestrator-bench")]
struct Args {
    /// Base URL of the orchestrator.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    url: String,
    /// Base URL of its memory server, to seed memories the runs recall (none when absent).
    #[arg(long)]
    memory_url: Option<String>,
    /// The agent to run (an llm agent on a scripted model with fixed latency).
    #[arg(long, default_value = "bench")]
    agent: String,
    /// Namespace of the bench's threads and memories.
    #[arg(long, default_value = "bench")]
    namespace: String,
    /// Memories to seed for the bench user.
    #[arg(long, default_value_t = 1000)]
    memories: usize,
    /// Sequential runs of phase 1 (and streamed runs of phase 3).
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Closed-loop workers of phase 2.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of phase 2.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Idle threads created in phase 4.
    #[arg(long, default_value_t = 5000)]
    idle_threads: usize,
    /// The orchestrator's process id (phase 4 reads its resident memory).
    #[arg(long)]
    pid: Option<u32>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.95),
        percentile(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The process's resident memory once it has stopped moving (two readings
/// half a second apart within 64 KiB, for at most ten seconds): right after
/// a loaded phase the allocator is still returning freed pages, which moved
/// a single reading by megabytes.
async fn settled_rss_kib(pid: u32) -> u64 {
    let mut last = rss_kib(pid).unwrap_or(0);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = rss_kib(pid).unwrap_or(0);
        if now.abs_diff(last) < 64 {
            return now;
        }
        last = now;
    }
    last
}

struct Bench {
    http: reqwest::Client,
    args: Args,
}

/// The JSON answer of `request`.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

impl Bench {
    async fn thread(&self) -> String {
        let r = answer(
            self.http
                .post(format!("{}/v1/threads", self.args.url))
                .json(&json!({"namespace": self.args.namespace, "user_id": "bench-user"})),
        )
        .await;
        r["id"].as_str().unwrap().to_owned()
    }

    /// One blocking run; its latency and its body.
    async fn run(&self, thread: &str, input: &str) -> (Duration, Value) {
        let started = Instant::now();
        let r = self
            .http
            .post(format!("{}/v1/threads/{thread}/runs", self.args.url))
            .json(&json!({"agent": self.args.agent, "input": input}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        let took = started.elapsed();
        assert_eq!(status.as_u16(), 200, "{body}");
        assert_eq!(body["run"]["status"], "completed", "{body}");
        (took, body)
    }

    /// Model and memory time a run's events report, in ms.
    async fn accounted_ms(&self, thread: &str, run: &str) -> f64 {
        let events = answer(self.http.get(format!(
            "{}/v1/threads/{thread}/runs/{run}/events",
            self.args.url
        )))
        .await;
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| match e["event"].as_str() {
                Some("usage") => e["data"]["latency_ms"].as_f64().unwrap_or(0.0),
                Some("memory.retrieved") => e["data"]["took_ms"].as_f64().unwrap_or(0.0),
                _ => 0.0,
            })
            .sum()
    }
}

async fn seed(args: &Args) {
    let Some(url) = &args.memory_url else {
        return;
    };
    let http = reqwest::Client::new();
    let topics = [
        "tea", "deploys", "invoices", "travel", "music", "rust", "meetings", "food",
    ];
    for chunk in (0..args.memories).collect::<Vec<_>>().chunks(250) {
        let memories: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({
                    "namespace": args.namespace, "user_id": "bench-user",
                    "text": format!("note {i} about {} number {}", topics[i % topics.len()], i * 7919 % 1000),
                })
            })
            .collect();
        let r = http
            .post(format!("{url}/v1/memories"))
            .json(&json!({"memories": memories}))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "seeding: {}",
            r.text().await.unwrap()
        );
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    seed(&args).await;
    let bench = Arc::new(Bench {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap(),
        args,
    });
    let a = &bench.args;
    println!(
        "orchestrator-bench: agent {}, {} seeded memories",
        a.agent, a.memories
    );
    println!("| phase | n | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|");

    // 1. Sequential runs: latency and overhead beyond model and memory time.
    let thread = bench.thread().await;
    for i in 0..10 {
        bench.run(&thread, &format!("warm-up {i} about tea")).await;
    }
    let mut latency = Vec::new();
    let mut overhead = Vec::new();
    for i in 0..a.runs {
        let thread = if i % 20 == 0 {
            bench.thread().await
        } else {
            thread.clone()
        };
        let (took, body) = bench
            .run(&thread, &format!("what do I know about tea {i}?"))
            .await;
        let ms = took.as_secs_f64() * 1e3;
        let run = body["run"]["id"].as_str().unwrap();
        let accounted = bench.accounted_ms(&thread, run).await;
        latency.push(ms);
        overhead.push(ms - accounted);
    }
    println!("{}", summary("run latency, sequential", latency));
    println!(
        "{}",
        summary("overhead beyond model + memory time", overhead)
    );

    // 2. Closed loop at `concurrency`.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..a.concurrency {
        let (bench, stop, done) = (Arc::clone(&bench), Arc::clone(&stop), Arc::clone(&done));
        workers.push(tokio::spawn(async move {
            let thread = bench.thread().await;
            let mut latencies = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (took, _) = bench
                    .run(&thread, &format!("worker {w} run {i} about rust"))
                    .await;
                latencies.push(took.as_secs_f64() * 1e3);
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        summary(&format!("run latency, concurrency {}", a.concurrency), all)
    );
    let throughput = done.load(Ordering::Relaxed) as f64 / elapsed;

    // 3. Time to the first SSE event of a streamed run.
    let thread = bench.thread().await;
    let mut first = Vec::new();
    for i in 0..a.runs {
        let started = Instant::now();
        let mut r = bench
            .http
            .post(format!("{}/v1/threads/{thread}/runs/stream", a.url))
            .json(&json!({"agent": a.agent, "input": format!("stream {i}")}))
            .send()
            .await
            .unwrap();
        let mut seen = String::new();
        while let Some(chunk) = r.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("data:") {
                break;
            }
        }
        first.push(started.elapsed().as_secs_f64() * 1e3);
        // Read the rest so the next run finds the thread free.
        while r.chunk().await.unwrap().is_some() {}
    }
    println!("{}", summary("request to first SSE event", first));
    println!("\nruns/s at concurrency {}: {throughput:.0}", a.concurrency);

    // 4. Memory per idle thread.
    if let Some(pid) = a.pid {
        let before = settled_rss_kib(pid).await;
        for _ in 0..a.idle_threads {
            bench.thread().await;
        }
        let after = settled_rss_kib(pid).await;
        println!(
            "resident memory: {before} KiB before, {after} KiB after {} idle threads: {:.2} KiB per thread",
            a.idle_threads,
            after.saturating_sub(before) as f64 / a.idle_threads as f64
        );
    }
}
