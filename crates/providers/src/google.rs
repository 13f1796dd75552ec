//! OAuth access tokens for Google APIs from Application Default Credentials.
//!
//! The chain, as Google's client libraries resolve it: a credentials file
//! (`embedder.credentials_file`, else `GOOGLE_APPLICATION_CREDENTIALS`, else
//! gcloud's `application_default_credentials.json`), which holds either a
//! service-account key (an RS256-signed assertion is exchanged at its
//! `token_uri`) or a user's refresh token (`gcloud auth application-default
//! login`); without a file, the metadata server of Cloud Run / GCE / GKE.
//! Tokens are cached until five minutes before they expire, and one refresh
//! runs at a time.
//!
//! Providers take a [`TokenSource`], so tests and other deployments can
//! inject their own.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

use crate::ProviderError;

/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long before expiry a token is replaced.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Lifetime asked for in a service-account assertion (Google's maximum).
const ASSERTION_LIFETIME_SECS: u64 = 3600;

/// Fills in where credentials come from as Google's client libraries do: an
/// unset `credentials_file` becomes `GOOGLE_APPLICATION_CREDENTIALS`, else
/// gcloud's `application_default_credentials.json` when it exists; a
/// `GCE_METADATA_HOST` replaces `metadata_url`.
pub fn resolve_environment(credentials_file: &mut Option<PathBuf>, metadata_url: &mut String) {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if credentials_file.is_none() {
        let well_known = var("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")))
            .map(|dir| dir.join("application_default_credentials.json"))
            .filter(|f| f.is_file());
        *credentials_file = var("GOOGLE_APPLICATION_CREDENTIALS")
            .map(PathBuf::from)
            .or(well_known);
    }
    if let Some(host) = var("GCE_METADATA_HOST") {
        *metadata_url = format!("http://{}", host.to_string_lossy());
    }
}

/// Boxed future returned by [`TokenSource::token`].
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<String, ProviderError>> + Send + 'a>>;

/// Something that hands out a currently valid bearer token.
pub trait TokenSource: Send + Sync + 'static {
    /// A token valid for at least a few minutes.
    fn token(&self) -> TokenFuture<'_>;
    /// Forgets a cached token the API refused, so the next call fetches anew;
    /// returns whether the next token may differ (a fixed one would not).
    fn invalidate(&self) -> bool {
        false
    }
}

/// A fixed token (tests, or a token minted elsewhere).
#[derive(Debug, Clone)]
pub struct StaticToken(pub String);

impl TokenSource for StaticToken {
    fn token(&self) -> TokenFuture<'_> {
        let t = self.0.clone();
        Box::pin(async move { Ok(t) })
    }
}

/// Where Application Default Credentials come from.
enum Credentials {
    /// The instance's service account, from the metadata server.
    MetadataServer { url: String },
    /// A user's refresh token (`type: authorized_user`).
    AuthorizedUser {
        token_uri: String,
        client_id: String,
        client_secret: String,
        refresh_token: String,
    },
    /// A service-account key (`type: service_account`).
    ServiceAccount {
        token_uri: String,
        client_email: String,
        key_id: Option<String>,
        key: Box<RsaKeyPair>,
    },
}

/// The credentials file, in the fields we use.
#[derive(Deserialize)]
struct CredentialsFile {
    #[serde(rename = "type")]
    kind: String,
    // authorized_user
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    // service_account
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

/// Tokens from Application Default Credentials, cached.
pub struct AdcTokenSource {
    http: reqwest::Client,
    credentials: Credentials,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for AdcTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.credentials {
            Credentials::MetadataServer { url } => format!("metadata server {url}"),
            Credentials::AuthorizedUser { .. } => "authorized user".into(),
            Credentials::ServiceAccount { client_email, .. } => {
                format!("service account {client_email}")
            }
        };
        f.debug_struct("AdcTokenSource")
            .field("credentials", &kind)
            .finish()
    }
}

fn config_error(message: String) -> ProviderError {
    ProviderError::Provider(message)
}

impl AdcTokenSource {
    /// Credentials from `file` if given, else the metadata server at
    /// `metadata_url` (e.g. `http://metadata.google.internal`).
    pub fn new(
        file: Option<&Path>,
        metadata_url: &str,
        timeout: Duration,
    ) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| config_error(format!("HTTP client: {e}")))?;
        let credentials = match file {
            Some(path) => Self::from_file(path)?,
            None => Credentials::MetadataServer {
                url: format!(
                    "{}/computeMetadata/v1/instance/service-accounts/default/token",
                    metadata_url.trim_end_matches('/')
                ),
            },
        };
        Ok(Self {
            http,
            credentials,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    fn from_file(path: &Path) -> Result<Credentials, ProviderError> {
        let bytes = std::fs::read(path).map_err(|e| {
            config_error(format!("cannot read credentials {}: {e}", path.display()))
        })?;
        let f: CredentialsFile = serde_json::from_slice(&bytes).map_err(|e| {
            config_error(format!("credentials {} are not JSON: {e}", path.display()))
        })?;
        let need = |field: Option<String>, name: &str| {
            field.filter(|v| !v.is_empty()).ok_or_else(|| {
                config_error(format!(
                    "credentials {} ({}) lack `{name}`",
                    path.display(),
                    f.kind
                ))
            })
        };
        let token_uri = f
            .token_uri
            .clone()
            .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into());
        match f.kind.as_str() {
            "authorized_user" => Ok(Credentials::AuthorizedUser {
                token_uri,
                client_id: need(f.client_id.clone(), "client_id")?,
                client_secret: need(f.client_secret.clone(), "client_secret")?,
                refresh_token: need(f.refresh_token.clone(), "refresh_token")?,
            }),
            "service_account" => {
                let pem = need(f.private_key.clone(), "private_key")?;
                let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
                    config_error(format!(
                        "credentials {}: private_key is not a PKCS#8 PEM key: {e}",
                        path.display()
                    ))
                })?;
                let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| {
                    config_error(format!(
                        "credentials {}: private_key is not an RSA key: {e}",
                        path.display()
                    ))
                })?;
                Ok(Credentials::ServiceAccount {
                    token_uri,
                    client_email: need(f.client_email.clone(), "client_email")?,
                    key_id: f.private_key_id.clone(),
                    key: Box::new(key),
                })
            }
            other => Err(config_error(format!(
                "credentials {} have type `{other}`; supported: service_account, authorized_user",
                path.display()
            ))),
        }
    }

    /// Asks the credentials' issuer for a new token.
    async fn fetch(&self) -> Result<TokenAnswer, ProviderError> {
        let (url, request) = match &self.credentials {
            Credentials::MetadataServer { url } => (
                url.as_str(),
                self.http
                    .get(url)
                    .header("Metadata-Flavor", "Google")
                    .query(&[("scopes", CLOUD_PLATFORM_SCOPE)]),
            ),
            Credentials::AuthorizedUser {
                token_uri,
                client_id,
                client_secret,
                refresh_token,
            } => (
                token_uri.as_str(),
                self.http.post(token_uri).form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id),
                    ("client_secret", client_secret),
                    ("refresh_token", refresh_token),
                ]),
            ),
            Credentials::ServiceAccount {
                token_uri,
                client_email,
                key_id,
                key,
            } => {
                let assertion = sign_assertion(key, key_id.as_deref(), client_email, token_uri)?;
                (
                    token_uri.as_str(),
                    self.http.post(token_uri).form(&[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                        ("assertion", &assertion),
                    ]),
                )
            }
        };
        let answer = request
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("token from {url}: {e}")))?;
        let status = answer.status();
        if !status.is_success() {
            let body = answer.text().await.unwrap_or_default();
            let message = format!(
                "token from {url}: {status}: {}",
                body.chars().take(300).collect::<String>()
            );
            // A refused credential will not heal by retrying; an outage might.
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                ProviderError::Unavailable(message)
            } else {
                ProviderError::Provider(message)
            });
        }
        answer.json().await.map_err(|e| {
            ProviderError::Provider(format!("token from {url}: unreadable answer: {e}"))
        })
    }
}

impl TokenSource for AdcTokenSource {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            // Holding the lock across the refresh lets one caller refresh
            // while the others wait for its token.
            let mut cached = self.cached.lock().await;
            if let Some((token, expires)) = cached.as_ref()
                && Instant::now() + REFRESH_MARGIN < *expires
            {
                return Ok(token.clone());
            }
            let answer = self.fetch().await?;
            let expires = Instant::now() + Duration::from_secs(answer.expires_in);
            *cached = Some((answer.access_token.clone(), expires));
            Ok(answer.access_token)
        })
    }

    fn invalidate(&self) -> bool {
        // If another caller holds the lock it is fetching a fresh token anyway.
        if let Ok(mut cached) = self.cached.try_lock() {
            *cached = None;
        }
        true
    }
}

/// The RS256-signed JWT a service account exchanges for an access token.
fn sign_assertion(
    key: &RsaKeyPair,
    key_id: Option<&str>,
    client_email: &str,
    audience: &str,
) -> Result<String, ProviderError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| ProviderError::Provider(format!("clock before 1970: {e}")))?
        .as_secs();
    let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
    if let Some(kid) = key_id {
        header["kid"] = kid.into();
    }
    let claims = serde_json::json!({
        "iss": client_email,
        "scope": CLOUD_PLATFORM_SCOPE,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| ProviderError::Provider("could not sign the service-account assertion".into()))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}
