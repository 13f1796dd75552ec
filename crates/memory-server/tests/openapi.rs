//! `/openapi.json` is served, describes every route, and every route it
//! describes exists on the real server (no drift either way for these routes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::{Server, config_toml, free_port};

const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/memories"),
    ("get", "/v1/memories"),
    ("get", "/v1/memories/{id}"),
    ("patch", "/v1/memories/{id}"),
    ("delete", "/v1/memories/{id}"),
    ("get", "/v1/memories/{id}/history"),
    ("post", "/v1/memories/search"),
    ("post", "/v1/memories/delete"),
    ("get", "/v1/export"),
    ("post", "/v1/import"),
    ("put", "/v1/sessions/{id}"),
    ("get", "/v1/sessions/{id}"),
    ("delete", "/v1/sessions/{id}"),
    ("post", "/v1/sessions/{id}/messages"),
    ("get", "/v1/sessions"),
    ("post", "/v1/sessions/{id}/promote"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, ""),
    );
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{}/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    // Schemas referenced by the operations are present.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Memory",
        "NewMemory",
        "SearchRequest",
        "SearchResponse",
        "ErrorResponse",
        "Session",
    ] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // Every documented route exists: an empty request gets a route-specific
    // answer, never the unknown-endpoint 404 or a 405.
    let id = "00000000-0000-7000-8000-000000000000";
    for (method, path) in &documented {
        let url = format!("{}{}", server.url, path.replace("{id}", id));
        let r = http
            .request(method.to_uppercase().parse().unwrap(), url)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}");
        assert!(
            !body.contains("no such endpoint"),
            "{method} {path}: {body}"
        );
    }
}
