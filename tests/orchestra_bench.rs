//! End-to-end: the real `orchestra-bench` binary against real memory-server
//! and orchestrator processes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A service process on a free loopback port, killed on drop.
struct Service {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// memory-server on an embedded store, with extra config (e.g. `[testing]`).
fn memory_server(extra: &str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[storage]\npath = \"{}\"\nsnapshot_every_secs = 0\n[log]\nlevel = \"warn\"\n{extra}",
        dir.path().join("data").display()
    );
    std::fs::write(dir.path().join("default.toml"), config).unwrap();
    start(
        test_support::workspace_binary("memory-server", "memory-server"),
        dir,
        "memory-server",
    )
}

fn start(bin: PathBuf, dir: tempfile::TempDir, what: &str) -> Service {
    let port = test_support::free_port();
    let child = Command::new(bin)
        .arg("--config-dir")
        .arg(dir.path())
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let service = Service {
        child,
        url,
        _dir: dir,
    };
    test_support::wait_ready(&service.url, what, Duration::from_secs(60));
    service
}

/// A plain GET over HTTP/1.1 (no client runtime needed); the body.
fn get(url: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// The server's request counts by `METHOD /route`, all statuses, less the
/// one readiness check of [`start`].
fn server_counts(url: &str, prefix: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in get(url, "/metrics").lines() {
        let Some(rest) = line.strip_prefix(&format!("{prefix}_http_requests_total{{")) else {
            continue;
        };
        let (labels, value) = rest.rsplit_once("} ").unwrap();
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap()
        };
        let n: f64 = value.trim().parse().unwrap();
        *out.entry(format!("{} {}", label("method"), label("route")))
            .or_default() += n as u64;
    }
    if let Some(n) = out.get_mut("GET /readyz") {
        *n -= 1;
    }
    out
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orchestra-bench"))
        .args(args)
        .output()
        .unwrap()
}

/// Starts a quiet run of `scenario` against `url` writing `json`, without waiting.
fn spawn_run(scenario: &str, url: &str, json: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orchestra-bench"))
        .args([
            "run",
            scenario,
            "--url",
            url,
            "--quiet",
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs `scenario` against `url` quietly, writing the JSON report to `json`; its stdout.
fn run_to(scenario: &str, url: &str, json: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        scenario,
        "--url",
        url,
        "--quiet",
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&bench(&args))
}

fn ok(out: &Output) -> String {
    test_support::succeeded(out)
}

fn scenario(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, format!("name = \"{name}\"\n{text}")).unwrap();
    p.display().to_string()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

const MIXED: &str = r#"
[load]
mode = "open"
rate = 60
concurrency = 16
warmup_secs = 0.5
duration_secs = 2.5

[dataset]
preload = 120
batch = 50
sessions = 10

[operations]
store = 20
search = 42
search_filtered = 18
session_append = 15
context = 5
"#;

#[test]
fn a_run_counts_what_the_server_counts_and_its_report_renders_in_chromium() {
    let server = memory_server("");
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), "mixed-short", MIXED);
    let (json, html) = (dir.path().join("r.json"), dir.path().join("r.html"));
    let stdout = run_to(
        &s,
        &server.url,
        &json,
        &[
            "--html",
            html.to_str().unwrap(),
            "--slo",
            "p95<5s,errors<1%",
        ],
    );
    assert!(
        stdout.contains("SLO p95<5s") && stdout.contains("pass"),
        "{stdout}"
    );
    let r = read_json(&json);
    assert_eq!(r["format"], "orchestra-bench/1");
    assert_eq!(r["errors"], 0, "{}", r["errors_by_kind"]);
    // 60/s for 2.5 s: 150 measured requests, each operation used.
    let requests = r["requests"].as_u64().unwrap();
    assert!((140..=151).contains(&requests), "{requests}");
    let ops = r["operations"].as_object().unwrap();
    for op in [
        "store",
        "search",
        "search_filtered",
        "session_append",
        "context",
    ] {
        assert!(ops[op]["ok"].as_u64().unwrap() > 0, "{op} never ran");
        assert!(ops[op]["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{op}");
    }
    let sum: u64 = ops.values().map(|o| o["requests"].as_u64().unwrap()).sum();
    assert_eq!(sum, requests);
    let timeline = r["timeline"].as_array().unwrap();
    let per_second: u64 = timeline.iter().map(|s| s["ok"].as_u64().unwrap()).sum();
    assert_eq!(per_second, requests);

    // Everything sent, set-up and warm-up included, is what the server counted.
    let mine: BTreeMap<String, u64> =
        serde_json::from_value(r["requests_by_route"].clone()).unwrap();
    let server_side = server_counts(&server.url, "memory");
    for route in [
        "GET /readyz",
        "POST /v1/memories",
        "POST /v1/memories/search",
        "POST /v1/sessions/{id}/messages",
        "GET /v1/sessions/{id}",
    ] {
        assert!(
            mine.get(route).copied().unwrap_or(0) > 0,
            "{route}: {mine:?}"
        );
    }
    for (route, n) in &mine {
        assert_eq!(
            server_side.get(route),
            Some(n),
            "{route}: server {server_side:?}"
        );
    }
    // The preload (3 batches of at most 50) is in the store count too.
    let stores = ops["store"]["requests"].as_u64().unwrap();
    assert!(mine["POST /v1/memories"] >= stores + 3);

    // The HTML report needs nothing from the network and draws its plots.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") || !page.contains("<script"),
        "no scripts, no fetches"
    );
    assert!(
        !page.contains("<script") && !page.contains("src=\"http") && !page.contains("href=\"http")
    );
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("Chromium is installed (scripts/test installs Debian's `chromium`)");
    let headless = |extra: &[&str]| {
        let profile = dir.path().join("chromium-profile");
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-dev-shm-usage",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(format!("file://{}", html.display()))
            .output()
            .unwrap()
    };
    let dom = String::from_utf8_lossy(&headless(&["--dump-dom"]).stdout).into_owned();
    for title in [
        "Latency over time",
        "Throughput over time",
        "Percentile distribution",
        "Latency per operation",
    ] {
        assert!(
            dom.contains(&format!("data-title=\"{title}\"")),
            "plot {title} missing from the rendered page"
        );
    }
    // Each line plot drew points; the bar plot drew a bar per operation and percentile.
    let polylines = dom.matches("<polyline").count();
    assert!(polylines >= 5 + 6, "{polylines} lines");
    assert!(!dom.contains("points=\"\""), "an empty series");
    assert_eq!(dom.matches("class=\"bar\"").count(), 5 * 3);
    let shot = dir.path().join("report.png");
    let out = headless(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=900,1800",
    ]);
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // A blank page compresses to a few kB; text, tables and plots do not.
    assert!(
        png.len() > 40_000,
        "screenshot of {} bytes: is the page blank?",
        png.len()
    );
    let keep = std::env::temp_dir().join("orchestra-bench-report.png");
    let _ = std::fs::copy(&shot, &keep);
}

#[test]
fn a_server_pause_shows_in_the_open_loop_tail_and_hides_in_the_closed_loop() {
    // Every 200th request pauses the whole server for 300 ms.
    let server = memory_server("[testing]\nstall_every = 200\nstall_ms = 300\n");
    let dir = tempfile::tempdir().unwrap();
    let common = "[dataset]\npreload = 20\n[operations]\nsearch = 1\n";
    // One connection's worth of load both ways, as wrk2 compares with wrk.
    let open = scenario(
        dir.path(),
        "open",
        &format!(
            "[load]\nmode = \"open\"\nrate = 100\nconcurrency = 1\nduration_secs = 5\n{common}"
        ),
    );
    let closed = scenario(
        dir.path(),
        "closed",
        &format!("[load]\nmode = \"closed\"\nconcurrency = 1\nduration_secs = 5\n{common}"),
    );
    let run = |s: &str, name: &str| {
        let out = dir.path().join(format!("{name}.json"));
        run_to(s, &server.url, &out, &[]);
        read_json(&out)
    };
    let c = run(&closed, "closed");
    let o = run(&open, "open");
    let p99 = |r: &Value| r["latency_ms"]["p99"].as_f64().unwrap();
    let max = |r: &Value| r["latency_ms"]["max"].as_f64().unwrap();
    // The closed loop met the pauses (its max) but sent nothing while paused,
    // so they are one sample in 200 and its p99 does not see them.
    assert!(max(&c) >= 250.0, "closed max {}", max(&c));
    assert!(p99(&c) < 100.0, "closed p99 {}", p99(&c));
    // The open loop's requests meant for the pause waited it out, and that wait is latency.
    assert!(
        p99(&o) >= 150.0,
        "open p99 {} (closed {})",
        p99(&o),
        p99(&c)
    );
    assert!(
        o["late_sends"].as_u64().unwrap() >= 10,
        "{}",
        o["late_sends"]
    );
    assert!(p99(&o) > 3.0 * p99(&c));
}

#[test]
fn runs_from_two_machines_merge_into_one_report_and_gates_fail_with_exit_code_2() {
    let server = memory_server("");
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(
        dir.path(),
        "two",
        "[load]\nmode = \"open\"\nrate = 40\nconcurrency = 8\nduration_secs = 2\n[dataset]\npreload = 30\n[operations]\nsearch = 3\nstore = 1\n",
    );
    let paths: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("m{i}.json")))
        .collect();
    // Both "machines" load the server at once.
    let children: Vec<Child> = paths
        .iter()
        .map(|p| spawn_run(&s, &server.url, p))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let merged = dir.path().join("merged.json");
    let html = dir.path().join("merged.html");
    let out = bench(&[
        "merge",
        paths[0].to_str().unwrap(),
        paths[1].to_str().unwrap(),
        "--json",
        merged.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--slo",
        "p50<1us",
    ]);
    assert_eq!(out.status.code(), Some(2), "a missed gate is exit code 2");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));
    let (a, b, m) = (
        read_json(&paths[0]),
        read_json(&paths[1]),
        read_json(&merged),
    );
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap();
    assert_eq!(n(&m, "requests"), n(&a, "requests") + n(&b, "requests"));
    assert_eq!(m["machines"].as_array().unwrap().len(), 2);
    // The merged route counts are the server's.
    let routes: BTreeMap<String, u64> =
        serde_json::from_value(m["requests_by_route"].clone()).unwrap();
    let server_side = server_counts(&server.url, "memory");
    for (route, count) in &routes {
        assert_eq!(server_side.get(route), Some(count), "{route}");
    }
    // Merged percentiles lie within the two runs' own.
    let p95 = |r: &Value| r["latency_ms"]["p95"].as_f64().unwrap();
    assert!(p95(&m) >= p95(&a).min(p95(&b)) && p95(&m) <= p95(&a).max(p95(&b)));
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("Percentile distribution")
    );

    // compare prints B against A and plots it.
    let cmp_html = dir.path().join("cmp.html");
    let stdout = ok(&bench(&[
        "compare",
        paths[0].to_str().unwrap(),
        paths[1].to_str().unwrap(),
        "--html",
        cmp_html.to_str().unwrap(),
    ]));
    assert!(
        stdout.contains("search p95 ms") && stdout.contains("B/A"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(&cmp_html)
            .unwrap()
            .matches("<svg class=\"plot\"")
            .count(),
        3
    );
}

#[test]
fn mcp_tool_calls_in_both_protocol_eras_count_as_the_server_counts() {
    let server = memory_server("");
    let dir = tempfile::tempdir().unwrap();
    for era in ["2026-07-28", "2025-11-25"] {
        let s = scenario(
            dir.path(),
            "mcp-short",
            &format!(
                "[target]\nkind = \"mcp\"\nprotocol = \"{era}\"\n[load]\nmode = \"open\"\nrate = 40\nconcurrency = 8\nduration_secs = 1.5\n[dataset]\npreload = 40\nsessions = 5\n[operations]\nstore = 1\nsearch = 2\nsearch_filtered = 1\ncontext = 1\n"
            ),
        );
        let json = dir.path().join("mcp.json");
        let before = server_counts(&server.url, "memory");
        run_to(&s, &server.url, &json, &[]);
        let r = read_json(&json);
        assert_eq!(r["errors"], 0, "{era}: {}", r["errors_by_kind"]);
        for op in ["store", "search", "search_filtered", "context"] {
            assert!(
                r["operations"][op]["ok"].as_u64().unwrap() > 0,
                "{era}: {op}"
            );
        }
        let after = server_counts(&server.url, "memory");
        let sent = r["requests_by_route"]["POST /mcp"].as_u64().unwrap();
        let extra = if era == "2025-11-25" { 2 } else { 0 }; // initialize + initialized
        assert_eq!(sent, r["requests"].as_u64().unwrap() + extra, "{era}");
        let counted = after.get("POST /mcp").copied().unwrap_or(0)
            - before.get("POST /mcp").copied().unwrap_or(0);
        assert_eq!(counted, sent, "{era}");
    }
}

#[test]
fn orchestrator_runs_blocking_and_streamed_report_time_to_first_event() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orchestrator.toml"),
        format!(
            "[storage]\npath = \"{}\"\nsnapshot_every_secs = 0\n[log]\nlevel = \"warn\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("agents.toml"),
        "[models.bench]\nprovider = \"scripted\"\nlatency_ms = 20\n[[models.bench.script]]\nreply = \"Noted: {input}\"\n[agents.bench]\nkind = \"llm\"\nmodel = \"bench\"\ninstruction = \"Answer.\"\n",
    )
    .unwrap();
    let orch = start(
        test_support::workspace_binary("orchestrator", "orchestrator"),
        dir,
        "orchestrator",
    );
    let work = tempfile::tempdir().unwrap();
    let s = scenario(
        work.path(),
        "runs",
        "[target]\nkind = \"orchestrator\"\nagent = \"bench\"\n[load]\nmode = \"open\"\nrate = 20\nconcurrency = 16\nduration_secs = 2\n[operations]\nrun = 1\nrun_stream = 1\n",
    );
    let json = work.path().join("runs.json");
    run_to(&s, &orch.url, &json, &[]);
    let r = read_json(&json);
    assert_eq!(r["errors"], 0, "{}", r["errors_by_kind"]);
    let run = &r["operations"]["run"];
    let stream = &r["operations"]["run_stream"];
    assert!(run["ok"].as_u64().unwrap() > 0 && stream["ok"].as_u64().unwrap() > 0);
    // The scripted model answers after 20 ms: a whole run takes at least that,
    // and a stream's first event comes before its end.
    assert!(run["latency_ms"]["p50"].as_f64().unwrap() >= 20.0);
    let first = stream["first_event_ms"]["p50"].as_f64().unwrap();
    assert!(
        first > 0.0 && first <= stream["latency_ms"]["p50"].as_f64().unwrap(),
        "{stream}"
    );
    let server_side = server_counts(&orch.url, "orchestrator");
    for route in ["POST /v1/runs", "POST /v1/runs/stream"] {
        assert_eq!(
            server_side.get(route),
            r["requests_by_route"][route].as_u64().as_ref(),
            "{route}"
        );
    }
}

#[test]
fn a_run_refuses_a_remote_target_unless_named_and_a_bad_scenario_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(
        dir.path(),
        "x",
        "[load]\nmode = \"closed\"\nduration_secs = 1\n[operations]\nsearch = 1\n",
    );
    let out = bench(&["run", &s, "--url", "http://10.255.255.1:8080", "--quiet"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--target-allow 10.255.255.1"), "{err}");
    let bad = scenario(
        dir.path(),
        "bad",
        "[load]\nmode = \"open\"\nduration_secs = 1\n[operations]\nsearch = 1\n",
    );
    let out = bench(&["run", &bad, "--quiet"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("exactly one of `rate`"),
        "{err}"
    );
}

#[test]
fn ctrl_c_stops_the_run_and_still_writes_a_partial_report() {
    let server = memory_server("");
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(
        dir.path(),
        "long",
        "[load]\nmode = \"open\"\nrate = 50\nduration_secs = 600\n[operations]\nsearch = 1\n",
    );
    let json = dir.path().join("partial.json");
    let mut child = spawn_run(&s, &server.url, &json);
    std::thread::sleep(Duration::from_secs(2));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // It stops within the drain bound, not after 600 s.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still running after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let r = read_json(&json);
    assert_eq!(r["interrupted"], true);
    let secs = r["duration_secs"].as_f64().unwrap();
    assert!((1.0..10.0).contains(&secs), "{secs}");
    assert!(r["requests"].as_u64().unwrap() >= 50);
}

/// Writes an ANN dataset directory (ann-bench's format) of `n` random
/// `dim`-d vectors and `q` queries, with exact cosine neighbours.
fn ann_dataset(dir: &Path, n: usize, q: usize, dim: usize, k: usize) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut unit = || {
        let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    let base: Vec<Vec<f32>> = (0..n).map(|_| unit()).collect();
    let queries: Vec<Vec<f32>> = (0..q).map(|_| unit()).collect();
    let bytes = |vs: &[Vec<f32>]| {
        vs.iter()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let mut gt = Vec::new();
    for qv in &queries {
        let mut scored: Vec<(f32, usize)> = base
            .iter()
            .enumerate()
            .map(|(i, b)| (b.iter().zip(qv).map(|(x, y)| x * y).sum(), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        gt.extend(
            scored[..k]
                .iter()
                .flat_map(|(_, i)| (*i as i32).to_le_bytes()),
        );
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("meta.json"),
        format!(
            r#"{{"dim": {dim}, "n_base": {n}, "n_queries": {q}, "gt_k": {k}, "metric": "cosine"}}"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join("base.f32"), bytes(&base)).unwrap();
    std::fs::write(dir.join("queries.f32"), bytes(&queries)).unwrap();
    std::fs::write(dir.join("gt.i32"), gt).unwrap();
}

#[test]
fn datasets_from_files_keys_and_the_recall_check() {
    // A server with keys and 32-d embeddings, so dataset vectors fit.
    let server = memory_server(
        "[embedder]\ndims = 32\n[auth]\nenabled = true\n[[auth.keys]]\nname = \"bench\"\nkey = \"bench-key-1\"\nrole = \"write\"\nnamespaces = [\"*\"]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    ann_dataset(&dir.path().join("ann"), 1500, 40, 32, 10);
    let ann = scenario(
        dir.path(),
        "ann",
        "[load]\nmode = \"closed\"\nconcurrency = 4\nduration_secs = 1.5\n[dataset]\nkind = \"ann\"\npath = \"ann\"\ntop_k = 10\n[operations]\nsearch_vector = 1\n",
    );
    let json = dir.path().join("ann.json");
    // Without the key every request is refused, and the run says so.
    let out = bench(&["run", &ann, "--url", &server.url, "--quiet"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("http 401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = run_to(
        &ann,
        &server.url,
        &json,
        &["--key", "bench-key-1", "--slo", "recall>0.9"],
    );
    let r = read_json(&json);
    assert_eq!(r["setup"]["memories"], 1500, "the whole base is preloaded");
    let sv = &r["operations"]["search_vector"];
    assert_eq!(sv["recall_checked"], sv["ok"]);
    let recall = sv["recall"].as_f64().unwrap();
    assert!(recall > 0.9 && recall <= 1.0, "{recall}");
    assert!(stdout.contains("recall@10"), "{stdout}");

    // An NDJSON file of memories: stored as given, searched by their own words.
    let lines = [
        r#"{"text": "Alice prefers green tea in the morning", "tags": ["prefs"]}"#,
        r#"{"text": "The deploy runner lives in the staging VPC", "metadata": {"source": "ops"}}"#,
        r#"{"text": "Bob's birthday is on the ninth of May"}"#,
    ];
    std::fs::write(dir.path().join("m.ndjson"), lines.join("\n")).unwrap();
    let nd = scenario(
        dir.path(),
        "nd",
        "[load]\nmode = \"open\"\nrate = 30\nduration_secs = 1\n[dataset]\nkind = \"ndjson\"\npath = \"m.ndjson\"\npreload = 6\n[operations]\nstore = 1\nsearch = 2\n",
    );
    let json = dir.path().join("nd.json");
    run_to(&nd, &server.url, &json, &["--key", "bench-key-1"]);
    let r = read_json(&json);
    assert_eq!(r["errors"], 0, "{}", r["errors_by_kind"]);
    assert_eq!(r["setup"]["memories"], 6);
    // A bad line is named.
    std::fs::write(
        dir.path().join("m.ndjson"),
        "{\"text\": \"ok\"}\n{\"no_text\": 1}\n",
    )
    .unwrap();
    let out = bench(&[
        "run",
        &nd,
        "--url",
        &server.url,
        "--quiet",
        "--key",
        "bench-key-1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("line 2") && err.contains("`text`"),
        "{err}"
    );
}

#[test]
fn an_identity_token_comes_from_gcloud() {
    let server = memory_server("");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let marker = dir.path().join("gcloud-called");
    let gcloud = bin.join("gcloud");
    std::fs::write(
        &gcloud,
        format!("#!/bin/sh\n[ \"$1 $2\" = \"auth print-identity-token\" ] || exit 3\necho \"$@\" > {}\necho fake.id.token\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&gcloud, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = scenario(
        dir.path(),
        "g",
        "[load]\nmode = \"open\"\nrate = 20\nduration_secs = 0.5\n[operations]\nsearch = 1\n",
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_orchestra-bench"))
            .args([
                "run",
                &s,
                "--url",
                &server.url,
                "--quiet",
                "--identity-token",
                "gcloud",
            ])
            .args(extra)
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    ok(&run(&[]));
    assert!(
        std::fs::read_to_string(&marker)
            .unwrap()
            .starts_with("auth print-identity-token")
    );
    // A gcloud that fails stops the run before any load, saying why.
    std::fs::write(
        &gcloud,
        "#!/bin/sh\necho 'ERROR: no credentialed accounts' >&2\nexit 1\n",
    )
    .unwrap();
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no credentialed accounts"),
        "{err}"
    );
}

/// Writes `lines` as a `replay` bodies file: one `[path, body]` array each.
fn bodies_file(dir: &Path, name: &str, lines: &[(&str, Value)]) -> String {
    let p = dir.join(name);
    let text: String = lines
        .iter()
        .map(|(path, body)| serde_json::json!([path, body.to_string()]).to_string() + "\n")
        .collect();
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn replay_sends_each_body_as_written_and_the_server_counts_every_request() {
    let server = memory_server("");
    let dir = tempfile::tempdir().unwrap();
    let bodies = bodies_file(
        dir.path(),
        "bodies.jsonl",
        &[
            (
                "/v1/memories",
                serde_json::json!({"namespace": "replay", "text": "a replayed memory"}),
            ),
            (
                "/v1/memories/search",
                serde_json::json!({"namespace": "replay", "query": "replayed", "top_k": 3}),
            ),
        ],
    );
    let out = ok(&bench(&[
        "replay",
        "--url",
        &server.url,
        "--bodies",
        &bodies,
        "--concurrency",
        "3",
        "--secs",
        "1",
    ]));
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    let sent = report["requests"].as_u64().unwrap();
    assert!(sent >= 2, "{report}");
    assert!(report["p99_ms"].as_f64().unwrap() >= report["p50_ms"].as_f64().unwrap());
    let counts = server_counts(&server.url, "memory");
    let (stores, searches) = (
        counts.get("POST /v1/memories").copied().unwrap_or(0),
        counts.get("POST /v1/memories/search").copied().unwrap_or(0),
    );
    assert_eq!(stores + searches, sent, "{counts:?}");
    assert!(stores > 0 && searches > 0, "{counts:?}");

    // A body the server refuses ends the run with the server's own words.
    let refused = bodies_file(
        dir.path(),
        "refused.jsonl",
        &[(
            "/v1/memories/search",
            serde_json::json!({"namespace": "replay", "query": "x", "top_k": "ten"}),
        )],
    );
    let out = bench(&[
        "replay",
        "--url",
        &server.url,
        "--bodies",
        &refused,
        "--secs",
        "1",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/v1/memories/search") && err.contains("400") && err.contains("top_k"),
        "{err}"
    );

    // A run that could send nothing says so.
    for (flag, value) in [("--secs", "0"), ("--concurrency", "0")] {
        let out = bench(&[
            "replay",
            "--url",
            &server.url,
            "--bodies",
            &bodies,
            flag,
            value,
        ]);
        assert!(!out.status.success(), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("must be above zero"), "{flag} {value}: {err}");
    }

    // And it loads loopback only, unless the host is named.
    let out = bench(&[
        "replay",
        "--url",
        "http://10.255.255.1:8080",
        "--bodies",
        &bodies,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--target-allow 10.255.255.1"), "{err}");
}
