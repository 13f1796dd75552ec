//! `jobs-bench`: what memory that maintains itself costs, measured against a
//! running memory-server whose `[models.bench]` is a scripted model with a
//! fixed latency (`scripts/bench-jobs` starts it).
//!
//! Phases: (1) session-append latency with extraction off and on (every
//! append queues a job: the policy's `after_messages = 1`), alternating
//! namespaces call by call so both see the same machine; (2) the job
//! pipeline: `--jobs` sessions queued at once, timed until every job is
//! done: jobs per second, and queue latency (from queued to started) per job.
//! A benchmark, not a test (docs/benchmarks.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a CLI tool: failing loudly is right

use std::time::{Duration, Instant};

use clap::Parser;
use memory_client::{
    AppendMessages, ExtractionPolicy, JobState, ListJobs, MemoryClient, MemoryPolicy, NewMessage,
    Strategy,
};

/// Benchmarks a running memory-server's jobs.
#[derive(Parser, Debug)]
#[command(name = "jobs-bench")]
struct Args {
    /// Base URL of the memory server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The `[models]` name of its scripted model.
    #[arg(long, default_value = "bench")]
    model: String,
    /// Appends per namespace in phase 1.
    #[arg(long, default_value_t = 500)]
    appends: usize,
    /// Jobs queued at once in phase 2 (and at `--rate` in phase 3).
    #[arg(long, default_value_t = 200)]
    jobs: usize,
    /// Jobs queued per second in phase 3 (below the pipeline's capacity).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(label: &str, mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let (p50, p95, p99) = (
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        percentile(&ms, 0.99),
    );
    println!(
        "{label}: n={} p50={p50:.3} ms p95={p95:.3} ms p99={p99:.3} ms",
        ms.len()
    );
    (p50, p95)
}

fn extraction(model: &str) -> MemoryPolicy {
    MemoryPolicy {
        extraction: Some(ExtractionPolicy {
            strategy: Strategy::Facts,
            model: model.into(),
            after_messages: Some(1),
            ..ExtractionPolicy::default()
        }),
        ..MemoryPolicy::default()
    }
}

fn append(ns: &str, user: &str, text: &str) -> AppendMessages {
    AppendMessages {
        namespace: ns.into(),
        // One user per session: no job finds another's memories, so each
        // job makes exactly one model call (no decisions call).
        user_id: Some(user.into()),
        messages: vec![NewMessage {
            role: "user".into(),
            content: text.into(),
            agent_id: None,
        }],
        ..AppendMessages::default()
    }
}

/// Each started job's queue latency (queued to started), in ms.
fn queue_waits(jobs: &[memory_client::Job]) -> Vec<f64> {
    jobs.iter()
        .filter_map(|j| {
            j.started_at
                .map(|s| (s - j.created_at).as_seconds_f64() * 1000.0)
        })
        .collect()
}

/// Waits until no job of `ns` is queued or running; the jobs then.
async fn drained(c: &MemoryClient, ns: &str, expected: usize) -> Vec<memory_client::Job> {
    loop {
        let jobs = c
            .jobs(&ListJobs {
                namespace: ns.into(),
                limit: Some(1000),
                ..ListJobs::default()
            })
            .await
            .unwrap()
            .jobs;
        let finished = jobs
            .iter()
            .filter(|j| matches!(j.state, JobState::Done | JobState::Failed))
            .count();
        if jobs.len() >= expected && finished == jobs.len() {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let c = MemoryClient::new(&args.url).unwrap();

    // Phase 1: append latency, extraction off and on, alternating.
    c.set_policy("bench-on", &extraction(&args.model))
        .await
        .unwrap();
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for i in 0..args.appends {
        for (ns, out) in [("bench-off", &mut off), ("bench-on", &mut on)] {
            // A new session per append in "on": each append queues a job.
            let session = format!("s{i}");
            let req = append(ns, &format!("u{i}"), &format!("message {i}: I like tea"));
            let started = Instant::now();
            c.append_messages(&session, &req).await.unwrap();
            out.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let (off50, off95) = summary("append, extraction off", off);
    let (on50, on95) = summary("append, extraction on (every append queues a job)", on);
    println!(
        "extraction's extra on the append path: p50 {:+.3} ms, p95 {:+.3} ms",
        on50 - off50,
        on95 - off95
    );
    // Let phase 1's jobs finish before phase 2 measures the pipeline.
    drained(&c, "bench-on", args.appends).await;

    // Phase 2: the pipeline, `--jobs` queued at once.
    c.set_policy("bench-jobs", &extraction(&args.model))
        .await
        .unwrap();
    let started = Instant::now();
    for i in 0..args.jobs {
        let req = append(
            "bench-jobs",
            &format!("u{i}"),
            &format!("job {i}: I like tea"),
        );
        c.append_messages(&format!("j{i}"), &req).await.unwrap();
    }
    let queued_in = started.elapsed().as_secs_f64();
    let jobs = drained(&c, "bench-jobs", args.jobs).await;
    let elapsed = started.elapsed().as_secs_f64();
    let done = jobs.iter().filter(|j| j.state == JobState::Done).count();
    let waits = queue_waits(&jobs);
    let calls: u64 = jobs.iter().map(|j| j.usage.calls).sum();
    println!(
        "pipeline: {} jobs ({done} done, {calls} model calls) queued in {queued_in:.2} s, \
         all finished after {elapsed:.2} s: {:.1} jobs/s",
        jobs.len(),
        jobs.len() as f64 / elapsed
    );
    summary("queue latency, all queued at once (the backlog)", waits);

    // Phase 3: jobs arriving at a steady rate below capacity: the queue
    // latency is then the time a worker takes to notice and claim a job.
    c.set_policy("bench-rate", &extraction(&args.model))
        .await
        .unwrap();
    let gap = Duration::from_secs_f64(1.0 / args.rate.max(0.1));
    let started = Instant::now();
    for i in 0..args.jobs {
        let due = started + gap * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
        let req = append(
            "bench-rate",
            &format!("u{i}"),
            &format!("job {i}: I like tea"),
        );
        c.append_messages(&format!("r{i}"), &req).await.unwrap();
    }
    let jobs = drained(&c, "bench-rate", args.jobs).await;
    let waits = queue_waits(&jobs);
    summary(
        &format!("queue latency at {} jobs/s (steady)", args.rate),
        waits,
    );
}
