//! The Vertex AI embedder and Application Default Credentials against a
//! loopback stub of Google's endpoints in their wire formats: the `predict`
//! method, the metadata server's token endpoint and the OAuth token endpoint
//! (refresh-token and signed-assertion grants, the assertion's RS256
//! signature checked). Then the real server on Vertex, credentials from the
//! metadata server as on Cloud Run.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{Server, config_toml, create_and_find, free_port, serve_stub};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use providers::ProviderError;
use providers::embed::{
    BuiltinEmbedder, Embedder, Purpose, RemoteSettings, VertexEmbedder, VertexSettings,
};
use providers::google::{AdcTokenSource, StaticToken, TokenSource};
use serde_json::{Value, json};

const DIMS: usize = 64;
const MODEL: &str = "text-embedding-005";
const SA_EMAIL: &str = "memory@proj.iam.gserviceaccount.com";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Google, as far as these tests need it.
#[derive(Default)]
struct Google {
    /// Public key (PKCS#1 DER) that service-account assertions must verify with.
    service_account_key: Mutex<Option<Vec<u8>>>,
    /// Its token endpoint, which assertions must name as audience.
    token_uri: Mutex<String>,
    /// `expires_in` of issued tokens.
    expires_in: Mutex<u64>,
    issued: Mutex<Vec<String>>,
    token_calls: AtomicUsize,
    predict_calls: AtomicUsize,
    batch_sizes: Mutex<Vec<usize>>,
    task_types: Mutex<Vec<String>>,
    /// Statuses to answer `predict` with before answering normally.
    script: Mutex<Vec<u16>>,
    /// Refuse every token (a broken service account).
    refuse_all: AtomicBool,
}

impl Google {
    fn issue(&self, prefix: &str) -> Response {
        let n = self.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("{prefix}-{n}");
        self.issued.lock().push(token.clone());
        Json(json!({
            "access_token": token,
            "expires_in": *self.expires_in.lock(),
            "token_type": "Bearer"
        }))
        .into_response()
    }
}

fn oauth_error(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_grant", "error_description": description})),
    )
        .into_response()
}

async fn metadata_token(
    State(g): State<Arc<Google>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header.",
        )
            .into_response();
    }
    if q.get("scopes").map(String::as_str) != Some(SCOPE) {
        return (StatusCode::BAD_REQUEST, "wrong scopes").into_response();
    }
    g.issue("meta")
}

/// Checks a service-account assertion as Google's token endpoint would.
fn check_assertion(g: &Google, assertion: &str) -> Result<(), String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err("not a JWT".into());
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string());
    let key = g.service_account_key.lock().clone().ok_or("no key")?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key)
        .verify(format!("{header}.{claims}").as_bytes(), &decode(signature)?)
        .map_err(|_| "bad signature".to_string())?;
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())?;
    let ok = header["alg"] == "RS256"
        && header["kid"] == "key-1"
        && claims["iss"] == SA_EMAIL
        && claims["scope"] == SCOPE
        && claims["aud"] == *g.token_uri.lock()
        && claims["exp"].as_u64().unwrap_or(0) == claims["iat"].as_u64().unwrap_or(1) + 3600;
    ok.then_some(())
        .ok_or_else(|| format!("bad assertion {header} {claims}"))
}

async fn oauth_token(
    State(g): State<Arc<Google>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    match field("grant_type") {
        "refresh_token" => {
            if (
                field("client_id"),
                field("client_secret"),
                field("refresh_token"),
            ) == ("cid", "csecret", "rtoken")
            {
                g.issue("user")
            } else {
                oauth_error("Bad Request")
            }
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            match check_assertion(&g, field("assertion")) {
                Ok(()) => g.issue("sa"),
                Err(e) => oauth_error(&e),
            }
        }
        other => oauth_error(&format!("unsupported grant {other}")),
    }
}

async fn predict(
    State(g): State<Arc<Google>>,
    UrlPath((project, location, model)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    g.predict_calls.fetch_add(1, Ordering::SeqCst);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if g.refuse_all.load(Ordering::SeqCst) || !g.issued.lock().iter().any(|t| t == token) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}))).into_response();
    }
    if (project.as_str(), location.as_str(), model.as_str())
        != ("proj", "us-central1", "text-embedding-005:predict")
    {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})),
        )
            .into_response();
    }
    let scripted = {
        let mut s = g.script.lock();
        (!s.is_empty()).then(|| s.remove(0))
    };
    if let Some(code) = scripted {
        return (StatusCode::from_u16(code).unwrap(), Json(json!({"error": {"code": code, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}))).into_response();
    }
    let dims = body["parameters"]["outputDimensionality"]
        .as_u64()
        .unwrap_or(768) as usize;
    if body["parameters"]["autoTruncate"] != true {
        return (StatusCode::BAD_REQUEST, "autoTruncate expected").into_response();
    }
    let instances = body["instances"].as_array().cloned().unwrap_or_default();
    g.batch_sizes.lock().push(instances.len());
    let e = BuiltinEmbedder::new(dims);
    let mut predictions = Vec::new();
    for i in &instances {
        let (Some(content), Some(task)) = (i["content"].as_str(), i["task_type"].as_str()) else {
            return (
                StatusCode::BAD_REQUEST,
                "instance needs content and task_type",
            )
                .into_response();
        };
        g.task_types.lock().push(task.to_owned());
        predictions.push(json!({
            "embeddings": {
                "statistics": {"truncated": false, "token_count": content.split_whitespace().count()},
                "values": e.vector(content)
            }
        }));
    }
    Json(json!({"predictions": predictions, "metadata": {"billableCharacterCount": 1}}))
        .into_response()
}

/// Starts the stub; returns its root URL.
async fn start_google(g: Arc<Google>) -> String {
    *g.expires_in.lock() = 3599;
    let app = axum::Router::new()
        .route(
            "/computeMetadata/v1/instance/service-accounts/default/token",
            axum::routing::get(metadata_token),
        )
        .route("/token", axum::routing::post(oauth_token))
        .route(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{model}",
            axum::routing::post(predict),
        )
        .with_state(Arc::clone(&g));
    let url = serve_stub(app).await;
    *g.token_uri.lock() = format!("{url}/token");
    url
}

fn settings(base_url: &str, batch_size: usize) -> VertexSettings {
    VertexSettings {
        base_url: base_url.into(),
        project: "proj".into(),
        location: "us-central1".into(),
        model: MODEL.into(),
        remote: RemoteSettings {
            dims: DIMS,
            timeout: Duration::from_secs(5),
            max_retries: 3,
            backoff: Duration::from_millis(5),
            batch_size,
            cache_entries: 100,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vertex_batches_marks_queries_and_documents_and_retries() {
    let g = Arc::new(Google::default());
    let url = start_google(Arc::clone(&g)).await;
    g.issued.lock().push("injected".into());
    let tokens: Arc<dyn TokenSource> = Arc::new(StaticToken("injected".into()));
    let e = VertexEmbedder::from_settings(settings(&url, 2), tokens).unwrap();
    assert_eq!(e.model_id(), "vertex:text-embedding-005:64");

    let texts: Vec<String> = (0..5).map(|i| format!("memory number {i}")).collect();
    let got = e.embed(&texts, Purpose::Document).await.unwrap();
    let reference = BuiltinEmbedder::new(DIMS);
    for (t, v) in texts.iter().zip(&got) {
        assert_eq!(v, &reference.vector(t));
    }
    assert_eq!(*g.batch_sizes.lock(), vec![2, 2, 1]);
    assert!(
        g.task_types
            .lock()
            .iter()
            .all(|t| t == "RETRIEVAL_DOCUMENT")
    );

    // The same text as a query is a different request (and cache entry).
    g.task_types.lock().clear();
    e.embed(&texts[..1], Purpose::Query).await.unwrap();
    assert_eq!(*g.task_types.lock(), vec!["RETRIEVAL_QUERY".to_string()]);
    let calls = g.predict_calls.load(Ordering::SeqCst);
    e.embed(&texts[..1], Purpose::Query).await.unwrap();
    assert_eq!(g.predict_calls.load(Ordering::SeqCst), calls, "cached");

    // Quota (429) and an outage (503) are retried.
    *g.script.lock() = vec![429, 503];
    let calls = g.predict_calls.load(Ordering::SeqCst);
    e.embed(&["after retries".to_string()], Purpose::Document)
        .await
        .unwrap();
    assert_eq!(g.predict_calls.load(Ordering::SeqCst) - calls, 3);

    // A token Google refuses is a provider error, not retried.
    let refused =
        VertexEmbedder::from_settings(settings(&url, 2), Arc::new(StaticToken("forged".into())))
            .unwrap();
    let calls = g.predict_calls.load(Ordering::SeqCst);
    let err = refused
        .embed(&["x".to_string()], Purpose::Document)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Provider(ref m) if m.contains("401")),
        "{err}"
    );
    assert_eq!(g.predict_calls.load(Ordering::SeqCst) - calls, 1);
}

/// A 2048-bit RSA key as PKCS#8 PEM, made by the `openssl` command.
fn rsa_key(dir: &Path) -> String {
    let path = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed (scripts/test installs it)");
    assert!(status.success());
    std::fs::read_to_string(path).unwrap()
}

fn public_key_of(pem: &str) -> Vec<u8> {
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use rustls_pki_types::pem::PemObject;
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    ring::signature::KeyPair::public_key(&pair)
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adc_files_get_tokens_and_tokens_are_cached_until_near_expiry() {
    let g = Arc::new(Google::default());
    let url = start_google(Arc::clone(&g)).await;
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(5);

    // A service-account key: a signed assertion, checked by the stub.
    let pem = rsa_key(dir.path());
    *g.service_account_key.lock() = Some(public_key_of(&pem));
    let sa = dir.path().join("sa.json");
    std::fs::write(
        &sa,
        json!({
            "type": "service_account",
            "project_id": "proj",
            "private_key_id": "key-1",
            "private_key": pem,
            "client_email": SA_EMAIL,
            "client_id": "1234",
            "token_uri": format!("{url}/token"),
        })
        .to_string(),
    )
    .unwrap();
    let source = AdcTokenSource::new(Some(&sa), "http://unused", timeout).unwrap();
    assert_eq!(source.token().await.unwrap(), "sa-1");
    assert_eq!(source.token().await.unwrap(), "sa-1", "cached");
    assert_eq!(g.token_calls.load(Ordering::SeqCst), 1);

    // gcloud user credentials: a refresh-token grant. Tokens that expire
    // within the refresh margin are replaced on every call.
    *g.expires_in.lock() = 60;
    let user = dir.path().join("user.json");
    let user_json = |refresh: &str| {
        json!({
            "type": "authorized_user",
            "client_id": "cid",
            "client_secret": "csecret",
            "refresh_token": refresh,
            "token_uri": format!("{url}/token"),
        })
        .to_string()
    };
    std::fs::write(&user, user_json("rtoken")).unwrap();
    let source = AdcTokenSource::new(Some(&user), "http://unused", timeout).unwrap();
    assert_eq!(source.token().await.unwrap(), "user-2");
    assert_eq!(source.token().await.unwrap(), "user-3");

    // A revoked refresh token: Google's 400, said plainly.
    std::fs::write(&user, user_json("revoked")).unwrap();
    let source = AdcTokenSource::new(Some(&user), "http://unused", timeout).unwrap();
    let err = source.token().await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Provider(ref m) if m.contains("400") && m.contains("invalid_grant")),
        "{err}"
    );

    // Unusable files are refused up front, saying why.
    let bad = dir.path().join("bad.json");
    for (content, says) in [
        (json!({"type": "external_account"}).to_string(), "supported"),
        (
            json!({"type": "service_account", "client_email": SA_EMAIL, "private_key": "nope"})
                .to_string(),
            "PKCS#8",
        ),
        (
            json!({"type": "authorized_user", "client_id": "cid"}).to_string(),
            "client_secret",
        ),
        ("not json".to_string(), "not JSON"),
    ] {
        std::fs::write(&bad, content).unwrap();
        let err = AdcTokenSource::new(Some(&bad), "http://unused", timeout).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
    let err = AdcTokenSource::new(Some(&dir.path().join("missing.json")), "", timeout).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_embeds_with_vertex_using_the_metadata_server() {
    let g = Arc::new(Google::default());
    let url = start_google(Arc::clone(&g)).await;
    let dir = tempfile::tempdir().unwrap();
    let embedder = format!(
        "[embedder]\nprovider = \"vertex\"\nbase_url = \"{url}\"\nproject = \"proj\"\n\
         location = \"us-central1\"\nmodel = \"{MODEL}\"\ndims = {DIMS}\n\
         metadata_url = \"{url}\"\nmax_retries = 1\nbackoff_ms = 5\n"
    );
    let server = Server::start(
        dir.path(),
        &config_toml(free_port(), &dir.path().join("data"), None, &embedder),
    );
    let m = create_and_find(&server.client(), "p").await;
    assert_eq!(m.embedding_model, "vertex:text-embedding-005:64");
    assert_eq!(
        *g.task_types.lock(),
        vec![
            "RETRIEVAL_DOCUMENT".to_string(),
            "RETRIEVAL_QUERY".to_string()
        ]
    );
    // One token from the metadata server served both calls.
    assert_eq!(*g.issued.lock(), vec!["meta-1".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_replaced_once_and_then_the_refusal_stands() {
    let g = Arc::new(Google::default());
    let url = start_google(Arc::clone(&g)).await;
    let tokens = AdcTokenSource::new(None, &url, Duration::from_secs(5)).unwrap();
    let e = VertexEmbedder::from_settings(settings(&url, 8), Arc::new(tokens)).unwrap();
    e.embed(&["first".to_string()], Purpose::Document)
        .await
        .unwrap();
    assert_eq!(*g.issued.lock(), vec!["meta-1".to_string()]);

    // Google revokes the cached token: one fresh token, one retry, success.
    g.issued.lock().clear();
    let calls = g.predict_calls.load(Ordering::SeqCst);
    e.embed(&["second".to_string()], Purpose::Document)
        .await
        .unwrap();
    assert_eq!(*g.issued.lock(), vec!["meta-2".to_string()]);
    assert_eq!(g.predict_calls.load(Ordering::SeqCst) - calls, 2);

    // Every token refused: one refresh, then the 401 is reported, not looped on.
    g.refuse_all.store(true, Ordering::SeqCst);
    let (calls, fetched) = (
        g.predict_calls.load(Ordering::SeqCst),
        g.token_calls.load(Ordering::SeqCst),
    );
    let err = e
        .embed(&["third".to_string()], Purpose::Document)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Provider(ref m) if m.contains("401")),
        "{err}"
    );
    assert_eq!(g.predict_calls.load(Ordering::SeqCst) - calls, 2);
    assert_eq!(g.token_calls.load(Ordering::SeqCst) - fetched, 1);
}
