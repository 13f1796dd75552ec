//! Configuration layers on the real binary: `<env>.toml`, `ORCHESTRA__*` overrides and `PORT`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::free_port;

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
    let err = crate::support::refused_start(&config, &["--env", "staging"]);
    assert!(err.contains("staging.toml"), "{err}");
    // An unknown key is an error, not silently ignored.
    std::fs::write(config.join("typo.toml"), "[server]\nprot = 9\n").unwrap();
    let err = crate::support::refused_start(&config, &["--env", "typo"]);
    assert!(err.contains("prot"), "{err}");
}

/// Runs the binary with `args` (and `stdin`) to completion.
fn run(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_memory-server"))
        .args(args)
        .env_remove("ORCHESTRA_ENV")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_command_line_says_what_is_wrong_and_where_settings_come_from() {
    // --help names the environment variables and PORT.
    let help = run(&["--help"], None);
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "ORCHESTRA__",
        "ORCHESTRA__AUTH__KEYS",
        "PORT",
        "default.toml",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}: {text}");
    }
    // --hash-key reads the key from stdin (no argument, or `-`) as well as from
    // the command line, with the same digest.
    let from_arg = run(&["--hash-key", "s3cret"], None);
    assert!(from_arg.status.success());
    let digest = String::from_utf8_lossy(&from_arg.stdout).trim().to_owned();
    assert_eq!(digest.len(), 64);
    for args in [&["--hash-key"][..], &["--hash-key", "-"][..]] {
        let out = run(args, Some("s3cret\n"));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);
    }
    let empty = run(&["--hash-key"], Some(""));
    assert_eq!(empty.status.code(), Some(2));
    assert!(stderr(&empty).contains("empty key"), "{}", stderr(&empty));
    // A --config-dir that does not exist stops the server and is named, before
    // or after the subcommand.
    for args in [
        &["--config-dir", "/nonexistent/conf"][..],
        &["mcp-stdio", "--config-dir", "/nonexistent/conf"][..],
    ] {
        let out = run(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("/nonexistent/conf"),
            "{}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("unexpected argument"));
    }
}

#[test]
fn a_taken_port_and_a_held_store_are_named_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    // A running server holds its embedded store and its port.
    let holder = crate::support::Server::start(
        dir.path(),
        &crate::support::config_toml(port, &data, None, ""),
    );
    let config = holder.config_dir.to_str().unwrap().to_owned();

    // A second process on the same store (here mcp-stdio) is refused, with
    // the file and the two ways out named.
    let held = run(&["mcp-stdio", "--config-dir", &config], None);
    assert_eq!(held.status.code(), Some(1));
    let said = stderr(&held);
    assert!(said.contains("open in another memory-server"), "{said}");
    assert!(said.contains(&data.display().to_string()), "{said}");
    assert!(said.contains("ORCHESTRA__STORAGE__PATH"), "{said}");
    assert!(said.contains("ORCHESTRA__STORAGE__BACKEND=redis"), "{said}");

    // A second server on its own store but the same port: the address is named.
    let other = crate::support::config_dir(
        dir.path(),
        &crate::support::config_toml(port, &dir.path().join("other"), None, ""),
    );
    let out = run(&["--config-dir", other.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        stderr(&out)
    );
    drop(holder);
}
