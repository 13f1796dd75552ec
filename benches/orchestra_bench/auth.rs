//! Credentials: the service's API key (`Authorization: Bearer`) and, for a
//! Cloud Run service behind IAM, a Google identity token in
//! `X-Serverless-Authorization` (Cloud Run checks it there, which leaves
//! `Authorization` to the API key), from `gcloud auth print-identity-token`
//! or the metadata server. The token is fetched again every half hour, so a
//! run longer than its one-hour life keeps working.

use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Where an identity token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IdentitySource {
    /// `gcloud auth print-identity-token` (an operator's machine).
    Gcloud,
    /// The metadata server (a VM or Cloud Run job in the project);
    /// `GCE_METADATA_HOST` overrides its address.
    Metadata,
}

/// How often a token is fetched again (tokens live one hour).
const REFRESH: Duration = Duration::from_secs(30 * 60);

/// The credentials every request carries.
#[derive(Clone, Default)]
pub struct Credentials {
    key: Option<String>,
    identity: Option<Arc<RwLock<String>>>,
}

impl Credentials {
    /// An API key only (or nothing).
    pub fn key(key: Option<String>) -> Self {
        Self {
            key,
            identity: None,
        }
    }

    /// Adds an identity token for `audience` (the service URL) from
    /// `source`, refreshed in the background while the process runs.
    pub async fn with_identity(
        mut self,
        source: IdentitySource,
        audience: &str,
    ) -> Result<Self, String> {
        let slot = Arc::new(RwLock::new(fetch(source, audience).await?));
        let (weak, audience) = (Arc::downgrade(&slot), audience.to_owned());
        self.identity = Some(slot);
        tokio::spawn(async move {
            // Ends when the credentials are dropped.
            loop {
                tokio::time::sleep(REFRESH).await;
                let Some(slot) = weak.upgrade() else { return };
                match fetch(source, &audience).await {
                    Ok(t) => {
                        if let Ok(mut s) = slot.write() {
                            *s = t;
                        }
                    }
                    Err(e) => eprintln!("orchestra-bench: identity token refresh failed: {e}"),
                }
            }
        });
        Ok(self)
    }

    /// Adds a fixed identity token (the tests' way in, without a token source).
    #[cfg(test)]
    fn with_token(mut self, token: String) -> Self {
        self.identity = Some(Arc::new(RwLock::new(token)));
        self
    }

    /// `req` with the credentials' headers.
    pub fn apply(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(t) = self
            .identity
            .as_ref()
            .and_then(|s| s.read().ok().map(|t| t.clone()))
        {
            req = req.header("x-serverless-authorization", format!("Bearer {t}"));
        }
        req
    }
}

/// A fresh identity token for `audience`.
pub async fn fetch(source: IdentitySource, audience: &str) -> Result<String, String> {
    let token = match source {
        IdentitySource::Gcloud => {
            let out = tokio::process::Command::new("gcloud")
                .args(["auth", "print-identity-token"])
                .output()
                .await
                .map_err(|e| {
                    format!(
                        "gcloud auth print-identity-token: {e} (is the Google Cloud CLI installed?)"
                    )
                })?;
            if !out.status.success() {
                return Err(format!(
                    "gcloud auth print-identity-token failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
        IdentitySource::Metadata => {
            let host = std::env::var("GCE_METADATA_HOST")
                .unwrap_or_else(|_| "metadata.google.internal".into());
            fetch_metadata(&host, audience).await?
        }
    };
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err("the identity token is empty or not one line".into());
    }
    Ok(token)
}

/// A token from the metadata server at `host` (`GCE_METADATA_HOST`'s format: host[:port]).
async fn fetch_metadata(host: &str, audience: &str) -> Result<String, String> {
    let url =
        format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/identity");
    let resp = reqwest::Client::new()
        .get(&url)
        .query(&[("audience", audience), ("format", "full")])
        .header("Metadata-Flavor", "Google")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("metadata server {host}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "metadata server {host}: http {}",
            resp.status().as_u16()
        ));
    }
    Ok(resp
        .text()
        .await
        .map_err(|e| format!("metadata server {host}: {e}"))?
        .trim()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for Google's metadata server, in its wire format.
    async fn metadata_stub() -> String {
        use axum::extract::Query;
        use axum::http::{HeaderMap, StatusCode};
        let app = axum::Router::new().route(
            "/computeMetadata/v1/instance/service-accounts/default/identity",
            axum::routing::get(
                |headers: HeaderMap, Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
                        return (StatusCode::FORBIDDEN, String::new());
                    }
                    (StatusCode::OK, format!("token-for-{}\n", q.get("audience").cloned().unwrap_or_default()))
                },
            ),
        );
        test_support::serve_stub(app).await
    }

    #[tokio::test]
    async fn a_metadata_token_goes_in_the_serverless_header_and_the_key_in_authorization() {
        let stub = metadata_stub().await;
        let audience = "https://memory-abc-uc.a.run.app";
        let token = fetch_metadata(stub.trim_start_matches("http://"), audience)
            .await
            .unwrap();
        let creds = Credentials::key(Some("k1".into())).with_token(token);
        let req = creds
            .apply(reqwest::Client::new().get("http://127.0.0.1:1/x"))
            .build()
            .unwrap();
        assert_eq!(req.headers()["authorization"], "Bearer k1");
        assert_eq!(
            req.headers()["x-serverless-authorization"],
            format!("Bearer token-for-{audience}").as_str()
        );
    }
}
