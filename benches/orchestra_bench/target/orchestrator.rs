//! The orchestrator's runs without a thread: `POST /v1/runs` answered when
//! the run ends, and `POST /v1/runs/stream` as server-sent events, timed to
//! the first event and to the end of the stream.

use std::sync::Arc;
use std::time::Instant;

use reqwest::Method;
use serde_json::json;

use super::{Answer, Client, Failure, Work, send, send_json, transport};
use crate::scenario::Op;

/// The orchestrator target.
pub struct Orchestrator {
    client: Arc<Client>,
    agent: String,
}

impl Orchestrator {
    /// Runs of `agent` over `client`.
    pub fn new(client: Arc<Client>, agent: &str) -> Self {
        Self {
            client,
            agent: agent.to_owned(),
        }
    }

    /// Does one run; `first_event` is measured from the call, and the
    /// driver adds the wait before it.
    pub async fn execute(&self, w: &Work) -> Result<Answer, Failure> {
        let body = json!({
            "agent": self.agent,
            "input": w.text,
            "namespace": w.namespace,
            "user_id": w.session,
        });
        match w.op {
            Op::Run => {
                // `{run, messages}`; a run still going after the server's wait
                // limit comes back 202 with its status, and is not a finished run.
                let answer = send_json(
                    self.client
                        .request(Method::POST, "/v1/runs", "/v1/runs")
                        .json(&body),
                )
                .await?;
                match answer["run"]["status"].as_str() {
                    Some("completed") => Ok(Answer::default()),
                    Some(other) => Err(format!("run {other}")),
                    None => Err("bad body".into()),
                }
            }
            Op::RunStream => {
                let started = Instant::now();
                let mut resp = send(
                    self.client
                        .request(Method::POST, "/v1/runs/stream", "/v1/runs/stream")
                        .header("accept", "text/event-stream")
                        .json(&body),
                )
                .await?;
                let mut first_event = None;
                let mut text = String::new();
                while let Some(chunk) = resp.chunk().await.map_err(|e| transport(&e))? {
                    text.push_str(&String::from_utf8_lossy(&chunk));
                    if first_event.is_none() && text.contains("data:") {
                        first_event = Some(started.elapsed());
                    }
                    // Only the end of the stream is read for its outcome: keep a tail.
                    if text.len() > 64 * 1024 {
                        let mut cut = text.len() - 4096;
                        while !text.is_char_boundary(cut) {
                            cut += 1;
                        }
                        text.drain(..cut);
                    }
                }
                if text.contains("run.completed") {
                    Ok(Answer {
                        first_event,
                        ..Answer::default()
                    })
                } else if text.contains("run.failed") {
                    Err("run failed".into())
                } else {
                    Err("stream ended without run.completed".into())
                }
            }
            _ => Err("not an orchestrator operation".into()),
        }
    }
}
