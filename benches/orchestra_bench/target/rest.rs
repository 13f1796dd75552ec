//! memory-server's REST API: the body and route of each operation.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Answer, Client, Failure, Work, send_json};
use crate::dataset::{Dataset, returned_indices};
use crate::scenario::Op;

/// The REST target.
pub struct Rest {
    client: Arc<Client>,
    dataset: Arc<Dataset>,
    top_k: usize,
}

impl Rest {
    /// A REST target over `client`.
    pub fn new(client: Arc<Client>, dataset: Arc<Dataset>, top_k: usize) -> Self {
        Self {
            client,
            dataset,
            top_k,
        }
    }

    /// Does one operation.
    pub async fn execute(&self, w: &Work) -> Result<Answer, Failure> {
        let c = &self.client;
        match w.op {
            Op::Store | Op::StoreBatch => {
                // One memory is its own body; a batch is `{"memories": [...]}`.
                let body = if w.op == Op::Store {
                    w.memories().pop().unwrap_or_default()
                } else {
                    json!({"memories": w.memories()})
                };
                send_json(
                    c.request(Method::POST, "/v1/memories", "/v1/memories")
                        .json(&body),
                )
                .await?;
            }
            Op::Search | Op::SearchFiltered => {
                let mut body =
                    json!({"namespace": w.namespace, "query": w.text, "top_k": self.top_k});
                if w.op == Op::SearchFiltered {
                    body["filter"] = json!({"metadata": {"group": w.group}});
                }
                search(c, &body).await?;
            }
            Op::SearchVector => {
                let body = json!({
                    "namespace": w.namespace,
                    "vector": self.dataset.query_vector(w.query),
                    "mode": "vector",
                    "top_k": self.top_k,
                });
                let answer = search(c, &body).await?;
                let got = returned_indices(&answer["results"]);
                return Ok(Answer {
                    recall: self.dataset.recall(w.query, &got, self.top_k),
                    ..Answer::default()
                });
            }
            Op::SessionAppend => {
                let body = json!({
                    "namespace": w.namespace,
                    "messages": [{"role": "user", "content": w.text}],
                });
                let path = format!("/v1/sessions/{}/messages", w.session);
                send_json(
                    c.request(Method::POST, "/v1/sessions/{id}/messages", &path)
                        .json(&body),
                )
                .await?;
            }
            Op::Context => {
                let path = format!("/v1/sessions/{}?namespace={}", w.session, w.namespace);
                send_json(c.request(Method::GET, "/v1/sessions/{id}", &path)).await?;
            }
            Op::Run | Op::RunStream => return Err("not a memory-server operation".into()),
        }
        Ok(Answer::default())
    }
}

async fn search(c: &Client, body: &Value) -> Result<Value, Failure> {
    send_json(
        c.request(Method::POST, "/v1/memories/search", "/v1/memories/search")
            .json(body),
    )
    .await
}
