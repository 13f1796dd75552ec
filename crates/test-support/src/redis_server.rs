//! A real `redis-server` on a free port in a temp dir, killed on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A test-owned Redis with AOF (`appendfsync always`), so restarts keep acknowledged writes.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    /// The TLS port, when started with [`RedisServer::start_tls`].
    tls_port: Option<u16>,
}

use crate::free_port;

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    // A server with a password answers NOAUTH: it is up all the same.
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made by `openssl`.
pub struct TlsFiles {
    /// The CA's certificate (PEM): what clients trust.
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed (scripts/test installs it)");
    assert!(status.success(), "openssl {args:?} failed");
}

impl TlsFiles {
    /// Makes a fresh CA (named `name`) and server certificate in `dir`.
    pub fn make(dir: &Path, name: &str) -> Self {
        std::fs::create_dir_all(dir).expect("a certificate directory");
        let subject = format!("/CN={name}");
        openssl(
            dir,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key",
                "-out", "ca.crt", "-subj", &subject,
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write san.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                "server.crt",
            ],
        );
        Self {
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        }
    }
}

impl RedisServer {
    /// Starts a server with its data in `dir`.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// Starts a server that also listens with TLS (see [`RedisServer::tls_url`])
    /// using `tls`, and requires `password`.
    pub fn start_tls(dir: &Path, tls: &TlsFiles, password: &str) -> Self {
        let tls_port = free_port();
        let path = |p: &PathBuf| p.display().to_string();
        let mut server = Self::start_with(
            dir,
            &[
                "--tls-port",
                &tls_port.to_string(),
                "--tls-cert-file",
                &path(&tls.cert),
                "--tls-key-file",
                &path(&tls.key),
                "--tls-ca-cert-file",
                &path(&tls.ca),
                "--tls-auth-clients",
                "no",
                "--requirepass",
                password,
            ],
        );
        server.tls_port = Some(tls_port);
        server
    }

    /// `rediss://127.0.0.1:<tls port>` of a server started with [`RedisServer::start_tls`].
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("started with start_tls");
        format!("rediss://127.0.0.1:{port}")
    }

    /// Starts a replica of `primary`, with its data in `dir`.
    pub fn start_replica(dir: &Path, primary: &RedisServer) -> Self {
        Self::start_with(
            dir,
            &["--replicaof", "127.0.0.1", &primary.port.to_string()],
        )
    }

    fn start_with(dir: &Path, extra: &[&str]) -> Self {
        std::fs::create_dir_all(dir).expect("a Redis data directory");
        let mut server = Self {
            child: None,
            port: free_port(),
            dir: dir.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            tls_port: None,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(self.port) {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
