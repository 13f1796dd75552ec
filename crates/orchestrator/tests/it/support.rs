//! Spawns the real `orchestrator` (and `memory-server`) binaries with
//! configurations of the test's choosing, and talks to them over HTTP.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
pub use test_support::free_port;

/// The agents every test can use (scripted models only).
pub const AGENTS: &str = include_str!("agents.toml");

/// A running process, killed on drop.
pub struct Process {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Kills the process at once (no drain).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(url: &str, what: &str) {
    test_support::wait_ready(url, what, Duration::from_secs(120));
}

/// Where an orchestrator keeps its runs.
pub enum Storage<'a> {
    /// An embedded store in this directory.
    Embedded(&'a Path),
    /// Redis at this URL.
    Redis(&'a str),
}

/// Starts an orchestrator with `agents`, `storage`, and `extra` TOML
/// (sections such as `[auth]`, `[memory]`, `[runs]`).
pub fn orchestrator(dir: &Path, agents: &str, storage: Storage<'_>, extra: &str) -> Process {
    orchestrator_with_env(dir, agents, storage, extra, &[])
}

/// As [`orchestrator`], with variables `env` set for the process.
pub fn orchestrator_with_env(
    dir: &Path,
    agents: &str,
    storage: Storage<'_>,
    extra: &str,
    env: &[(&str, &str)],
) -> Process {
    let port = free_port();
    let config_dir = dir.join(format!("orchestrator-{port}"));
    std::fs::create_dir_all(&config_dir).unwrap();
    let storage = match storage {
        Storage::Embedded(path) => format!("backend = \"embedded\"\npath = \"{}\"", path.display()),
        Storage::Redis(url) => format!("backend = \"redis\"\nredis_url = \"{url}\""),
    };
    let toml = format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {port}\nshutdown_grace_secs = 2\n\n\
         [storage]\n{storage}\n\n[log]\nlevel = \"error\"\n\n{extra}\n"
    );
    std::fs::write(config_dir.join("orchestrator.toml"), toml).unwrap();
    std::fs::write(config_dir.join("agents.toml"), agents).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .arg("--config-dir")
        .arg(&config_dir)
        .env_remove("ORCHESTRA_ENV")
        .env_remove("PORT")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env("CLOUDSDK_CONFIG", &config_dir)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn orchestrator");
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url, "orchestrator");
    Process { child, url }
}

/// Starts a memory-server on an embedded store in `dir` with `extra` TOML.
pub fn memory_server(dir: &Path, extra: &str) -> Process {
    let port = free_port();
    let config_dir: PathBuf = dir.join(format!("memory-{port}"));
    std::fs::create_dir_all(&config_dir).unwrap();
    let toml = format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {port}\n\n[storage]\nbackend = \"embedded\"\n\
         path = \"{}\"\nsnapshot_every_secs = 0\n\n[log]\nlevel = \"error\"\n\n{extra}\n",
        config_dir.join("data").display()
    );
    std::fs::write(config_dir.join("default.toml"), toml).unwrap();
    let child = Command::new(test_support::workspace_binary(
        "memory-server",
        "memory-server",
    ))
    .arg("--config-dir")
    .arg(&config_dir)
    .env_remove("ORCHESTRA_ENV")
    .env_remove("PORT")
    .env("CLOUDSDK_CONFIG", &config_dir)
    .stdout(Stdio::null())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("spawn memory-server");
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url, "memory-server");
    Process { child, url }
}

/// A small HTTP client for the tests.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    /// Base URL.
    pub url: String,
    key: Option<String>,
}

/// A status and a JSON body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body (`Null` when not JSON).
    pub body: Value,
}

impl Api {
    /// A client of `url` without a key.
    pub fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            key: None,
        }
    }

    /// The same client sending `key`.
    pub fn with_key(&self, key: &str) -> Self {
        Self {
            key: Some(key.to_owned()),
            ..self.clone()
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.url));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    async fn answer(r: reqwest::RequestBuilder) -> Answer {
        let response = r.send().await.expect("request sent");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Answer { status, body }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        Self::answer(self.req(reqwest::Method::GET, path)).await
    }

    /// `POST path` with JSON `body`.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        Self::answer(self.req(reqwest::Method::POST, path).json(&body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Answer {
        Self::answer(self.req(reqwest::Method::DELETE, path)).await
    }

    /// A new thread in `namespace` for `user`; returns its id.
    pub async fn thread(&self, namespace: &str, user: Option<&str>) -> String {
        let a = self
            .post(
                "/v1/threads",
                json!({"namespace": namespace, "user_id": user}),
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        a.body["id"].as_str().unwrap().to_owned()
    }

    /// Runs `agent` on `thread` with `input`, waiting for the end.
    pub async fn run(&self, thread: &str, agent: &str, input: &str) -> Answer {
        self.post(
            &format!("/v1/threads/{thread}/runs"),
            json!({"agent": agent, "input": input}),
        )
        .await
    }

    /// Reads the SSE stream of `path` (POST with `body`, or GET with
    /// `last_event_id`) to its end; returns the events' JSON, checking that
    /// each SSE `id` is its `seq`.
    pub async fn sse(
        &self,
        path: &str,
        body: Option<Value>,
        last_event_id: Option<u64>,
    ) -> Vec<Value> {
        let mut r = match body {
            Some(b) => self.req(reqwest::Method::POST, path).json(&b),
            None => self.req(reqwest::Method::GET, path),
        };
        if let Some(id) = last_event_id {
            r = r.header("Last-Event-ID", id.to_string());
        }
        let response = tokio::time::timeout(Duration::from_secs(60), r.send())
            .await
            .expect("the stream starts")
            .expect("request sent");
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let text = tokio::time::timeout(Duration::from_secs(60), response.text())
            .await
            .expect("the stream ends")
            .expect("stream read");
        parse_sse(&text)
    }
}

impl Api {
    /// Every stored event of `run` (a run's JSON) in `thread`, in order.
    pub async fn events(&self, thread: &str, run: &Value) -> Vec<Value> {
        let id = run["id"].as_str().expect("a run with an id");
        let a = self
            .get(&format!("/v1/threads/{thread}/runs/{id}/events"))
            .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        a.body["events"].as_array().expect("an event list").clone()
    }
}

/// The first event of `kind` in `events` (which must have one).
pub fn first_event(events: &[Value], kind: &str) -> Value {
    events
        .iter()
        .find(|e| e["event"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {events:?}"))
        .clone()
}

/// The events of an SSE body.
pub fn parse_sse(text: &str) -> Vec<Value> {
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let mut id = None;
        let mut kind = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("event: ") {
                kind = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(v.to_owned());
            }
        }
        if let Some(data) = data {
            let e: Value = serde_json::from_str(&data).expect("event data is JSON");
            assert_eq!(
                id.as_deref(),
                Some(e["seq"].to_string().as_str()),
                "SSE id is the seq"
            );
            assert_eq!(
                kind.as_deref(),
                e["event"].as_str(),
                "SSE event is the kind"
            );
            events.push(e);
        }
    }
    events
}

/// The kinds of `events`, in order.
pub fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Polls `GET path` until `done` holds for its body (30 s at most).
pub async fn eventually(api: &Api, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = api.get(path).await;
        if a.status == 200 && done(&a.body) {
            return a.body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {path}: last {:?}",
            a.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
