//! `replay`: POSTs request bodies written beforehand, closed loop, at a fixed
//! concurrency, and reports QPS and latency. It knows no service's wire
//! format, so a harness can drive two different services the same way:
//! `benches/versus_chroma.py --light-client` measures memory-server and
//! Chroma with it, a client that costs the shared cores far less than
//! Python's.
//!
//! The bodies file has one JSON array `[path, body]` per line; `body` is the
//! request body as a string. Client `w` starts at line `w * 7919` and cycles.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use crate::{record, safety};

/// `orchestra-bench replay`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Base URL; each line's path is appended to it.
    #[arg(long)]
    url: String,
    /// The bodies file: one `[path, body]` JSON array per line.
    #[arg(long)]
    bodies: PathBuf,
    /// Requests in flight, one connection each.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Hosts other than loopback this run may load (comma-separated, exact names).
    #[arg(long, value_delimiter = ',')]
    target_allow: Vec<String>,
}

/// Sends until `--secs` have passed and prints one JSON line:
/// `{"requests", "secs", "qps", "p50_ms", "p99_ms"}`. Any answer but 2xx ends
/// the run with its status and the start of its body.
pub async fn run(args: ReplayArgs) -> Result<(), String> {
    safety::check_target(&args.url, &args.target_allow)?;
    if args.concurrency == 0 || !args.secs.is_finite() || args.secs <= 0.0 {
        return Err("--concurrency and --secs must be above zero (and --secs finite)".into());
    }
    let bodies = Arc::new(read_bodies(&args)?);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.secs);
    let workers: Vec<_> = (0..args.concurrency)
        .map(|w| {
            let (http, bodies) = (http.clone(), Arc::clone(&bodies));
            tokio::spawn(async move { client(w, &http, &bodies, end).await })
        })
        .collect();
    let mut all = record::histogram();
    for w in workers {
        let mine = w.await.map_err(|e| e.to_string())??;
        all.add(&mine).map_err(|e| e.to_string())?;
    }
    let secs = start.elapsed().as_secs_f64();
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        json!({
            "requests": all.len(), "secs": secs, "qps": all.len() as f64 / secs,
            "p50_ms": ms(0.5), "p99_ms": ms(0.99),
        })
    );
    Ok(())
}

/// The lines of `--bodies` as full URLs and bodies.
fn read_bodies(args: &ReplayArgs) -> Result<Vec<(String, Vec<u8>)>, String> {
    let text = std::fs::read_to_string(&args.bodies)
        .map_err(|e| format!("{}: {e}", args.bodies.display()))?;
    let base = args.url.trim_end_matches('/');
    let bodies = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<(String, String)>(line)
                .map(|(path, body)| (format!("{base}{path}"), body.into_bytes()))
                .map_err(|e| {
                    format!(
                        "{} line {}: want a JSON array [path, body]: {e}",
                        args.bodies.display(),
                        i + 1
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if bodies.is_empty() {
        return Err(format!("{}: no bodies", args.bodies.display()));
    }
    Ok(bodies)
}

/// One closed-loop client: the latency of each of its requests, in µs.
async fn client(
    w: usize,
    http: &reqwest::Client,
    bodies: &[(String, Vec<u8>)],
    end: Instant,
) -> Result<Histogram<u64>, String> {
    let mut hist = record::histogram();
    let mut q = w * 7919 % bodies.len();
    while Instant::now() < end {
        let (url, body) = &bodies[q];
        let t = Instant::now();
        let resp = http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            // A copy of a few KiB per request: cheaper than a dependency for `Bytes`.
            .body(body.clone())
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = resp.status();
        let answer = resp.bytes().await.map_err(|e| format!("POST {url}: {e}"))?;
        if !status.is_success() {
            let start = String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned();
            return Err(format!("POST {url}: {status}: {start}"));
        }
        record::record(&mut hist, t.elapsed());
        q = (q + 1) % bodies.len();
    }
    Ok(hist)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str, bodies: PathBuf) -> ReplayArgs {
        ReplayArgs {
            url: url.into(),
            bodies,
            concurrency: 2,
            secs: 1.0,
            target_allow: vec![],
        }
    }

    /// A bodies file holding `text`, in a directory that lives as long as the first half.
    fn bodies_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bodies.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_bad_line_names_its_number_and_the_shape_wanted() {
        let (_dir, path) = bodies_file("[\"/a\", \"{}\"]\n{\"path\": \"/b\"}\n");
        let err = read_bodies(&args("http://127.0.0.1:9", path)).unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("[path, body]"),
            "{err}"
        );
    }

    #[test]
    fn paths_join_the_base_url_and_bodies_stay_as_written() {
        let (_dir, path) = bodies_file("[\"/v1/search\", \"{\\\"k\\\": 1}\"]\n\n");
        let got = read_bodies(&args("http://127.0.0.1:9/", path)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "http://127.0.0.1:9/v1/search");
        assert_eq!(&got[0].1[..], b"{\"k\": 1}");
    }
}
