//! JSON logs in the shape Cloud Logging reads, with the request's trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{config_toml, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_logs_are_cloud_logging_json_with_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let toml = config_toml(port, &dir.path().join("data"), None, "").replace(
        "[log]\nlevel = \"warn\"",
        "[log]\nlevel = \"info\"\njson = true\ngcp_project = \"proj-1\"",
    );
    std::fs::write(config.join("default.toml"), toml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_memory-server"))
        .arg("--config-dir")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{url}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = http
        .get(format!("{url}/v1/memories?namespace=x"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    child.wait().unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["severity"].is_string() && l["message"].is_string())
    );
    let request = lines
        .iter()
        .find(|l| l["message"] == "request finished" && l["path"] == "/v1/memories")
        .unwrap_or_else(|| panic!("no request line in\n{stderr}"));
    assert_eq!(request["severity"], "INFO");
    assert_eq!(request["status"], 200);
    assert_eq!(
        request["logging.googleapis.com/trace"],
        format!("projects/proj-1/traces/{trace}")
    );
}
