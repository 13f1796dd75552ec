//! `/openapi.json` is served, describes every route, and every route it
//! describes exists on the real server (no drift either way for these routes).

use crate::support::{Server, config_toml, free_port};
use serde_json::Value;

const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/memories"),
    ("get", "/v1/memories"),
    ("get", "/v1/memories/{id}"),
    ("patch", "/v1/memories/{id}"),
    ("delete", "/v1/memories/{id}"),
    ("get", "/v1/memories/{id}/history"),
    ("post", "/v1/memories/search"),
    ("post", "/v1/memories/delete"),
    ("get", "/v1/namespaces"),
    ("get", "/v1/namespaces/{namespace}/settings"),
    ("put", "/v1/namespaces/{namespace}/settings"),
    ("delete", "/v1/namespaces/{namespace}/settings"),
    ("get", "/v1/namespaces/{namespace}/policy"),
    ("put", "/v1/namespaces/{namespace}/policy"),
    ("delete", "/v1/namespaces/{namespace}/policy"),
    ("get", "/v1/export"),
    ("post", "/v1/import"),
    ("post", "/v1/memories/{id}/supersede"),
    ("put", "/v1/sessions/{id}"),
    ("get", "/v1/sessions/{id}"),
    ("delete", "/v1/sessions/{id}"),
    ("post", "/v1/sessions/{id}/messages"),
    ("get", "/v1/sessions"),
    ("post", "/v1/sessions/{id}/promote"),
    ("post", "/v1/sessions/{id}/extract"),
    ("get", "/v1/jobs"),
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

    // Links lead from a created memory and a stored session to the
    // operations that take their id, and name operations that exist.
    let operation_ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    for (path, method, status, expected) in [
        ("/v1/memories", "post", "201", 5),
        ("/v1/sessions/{id}", "put", "200", 5),
    ] {
        let links = doc["paths"][path][method]["responses"][status]["links"]
            .as_object()
            .unwrap_or_else(|| panic!("no links on {method} {path} {status}"));
        assert_eq!(links.len(), expected, "{method} {path}");
        for (name, link) in links {
            let target = link["operationId"].as_str().unwrap();
            assert!(operation_ids.contains(&target), "{name} -> {target}");
            assert!(link["parameters"]["id"].is_string(), "{name}");
        }
    }

    // The server's input checks are stated for clients and fuzzers.
    let new_memory = &schemas["NewMemory"]["properties"];
    assert_eq!(
        new_memory["namespace"]["pattern"],
        "^[A-Za-z0-9._:-]{1,128}$"
    );
    assert_eq!(new_memory["text"]["maxLength"], 32000);
    assert!(new_memory["agent_id"]["pattern"].is_string());
    assert!(schemas["NewMemory"]["example"]["text"].is_string());

    // The interactive page is served from the binary: it reads this document
    // and loads nothing from elsewhere.
    let page = http
        .get(format!("{}/docs", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("fetch(\"/openapi.json\")"), "{html}");
    for outside in ["src=\"http", "href=\"http", "@import", "<link"] {
        assert!(!html.contains(outside), "the page loads {outside}...");
    }

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
