//! Configuration layers on the real binary: `<env>.toml`, `ORCHESTRA__*` overrides and `PORT`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::free_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_file_env_vars_and_port_override_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    // The defaults point at a port and a data directory that must not be used.
    std::fs::write(
        config.join("default.toml"),
        "[server]\nport = 1\n[storage]\npath = \"/nonexistent/never\"\n[limits]\nmax_top_k = 1000\n",
    )
    .unwrap();
    std::fs::write(config.join("test.toml"), "[limits]\nmax_top_k = 7\n").unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_memory-server"))
        .args(["--config-dir"])
        .arg(&config)
        .args(["--env", "test"])
        .env("PORT", port.to_string())
        .env("ORCHESTRA__STORAGE__PATH", &data)
        .env("ORCHESTRA__MCP__ALLOWED_HOSTS", r#"["memory.example.com"]"#)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server never ready on PORT {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // test.toml's limit applies: top_k 8 is refused, 7 accepted.
    let search = |k: usize| {
        http.post(format!("{url}/v1/memories/search"))
            .json(&serde_json::json!({"namespace": "n", "query": "x", "top_k": k}))
            .send()
    };
    assert_eq!(search(8).await.unwrap().status(), 400);
    assert_eq!(search(7).await.unwrap().status(), 200);
    // A list from the environment applies: /mcp takes only the listed host.
    let mcp = |host: &str| {
        http.post(format!("{url}/mcp"))
            .header("host", host)
            .header("accept", "application/json, text/event-stream")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
    };
    assert_ne!(mcp("memory.example.com").await.unwrap().status(), 403);
    assert_eq!(
        mcp(&format!("127.0.0.1:{port}")).await.unwrap().status(),
        403
    );
    // ORCHESTRA__STORAGE__PATH applies: the store file is there.
    assert!(std::fs::read_dir(&data).unwrap().count() > 0);
    let _ = child.kill();
    let _ = child.wait();

    // A missing environment file is an error that names it.
    let out = Command::new(env!("CARGO_BIN_EXE_memory-server"))
        .arg("--config-dir")
        .arg(&config)
        .args(["--env", "staging"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("staging.toml"));
    // An unknown key is an error, not silently ignored.
    std::fs::write(config.join("typo.toml"), "[server]\nprot = 9\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_memory-server"))
        .arg("--config-dir")
        .arg(&config)
        .args(["--env", "typo"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("prot"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
