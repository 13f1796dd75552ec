//! JSON logs in the shape Cloud Logging reads, with the request's trace.

use crate::support::{Server, config_toml, free_port};
use serde_json::Value;

/// Starts the server with `log` as its `[log]` section, keeping what it logs.
fn start(dir: &std::path::Path, log: &str) -> Server {
    let toml = config_toml(free_port(), &dir.join("data"), None, "")
        .replace("[log]\nlevel = \"warn\"", &format!("[log]\n{log}"));
    Server::start_logging(dir, &toml)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_logs_are_cloud_logging_json_with_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        "level = \"info\"\njson = true\ngcp_project = \"proj-1\"",
    );
    let url = &server.url;
    let http = reqwest::Client::new();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = http
        .get(format!("{url}/v1/memories?namespace=x"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stderr = server.stop_logs();
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
    // Fields only the trace exporter reads stay out of log lines.
    let fields = request.as_object().unwrap();
    assert!(
        fields
            .keys()
            .all(|k| !k.starts_with("otel.") && !k.starts_with("http.")),
        "{request}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_request_logs_carry_no_empty_or_export_only_fields() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "level = \"info\"");
    let url = &server.url;
    let r = reqwest::get(format!("{url}/v1/memories?namespace=x"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stderr = server.stop_logs();
    let line = stderr
        .lines()
        .find(|l| l.contains("request finished") && l.contains("path=/v1/memories"))
        .unwrap_or_else(|| panic!("no request line in\n{stderr}"));
    assert!(line.contains("method=GET"), "{line}");
    assert!(line.contains("status=200"), "{line}");
    for noise in ["trace=", "otel.", "http.route"] {
        assert!(!line.contains(noise), "{noise} in {line}");
    }
    // Latency without float noise: at most three decimals.
    let latency = line
        .split("latency_ms=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no latency in {line}"));
    let decimals = latency.split('.').nth(1).map_or(0, str::len);
    assert!(decimals <= 3, "{latency}");
    // The start-up line says where the store is.
    assert!(
        stderr.contains("store=") && stderr.contains("data"),
        "no store location in\n{stderr}"
    );
}
