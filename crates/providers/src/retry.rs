//! Sending one provider request with retries, written once for every
//! provider (embedders and chat models): backoff with jitter on 429, 5xx and
//! connection failures, `Retry-After` honoured, a 401 answered by fetching
//! fresh credentials once.

use std::future::Future;
use std::time::Duration;

use crate::ProviderError;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubles per retry, capped at 8 s.
    pub backoff: Duration,
}

/// Longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Longest `Retry-After` honoured; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Sends the request `make` builds until one succeeds (2xx) and returns its
/// response. `endpoint` names the provider in errors; `unauthorized` is
/// called on a 401 and says whether fresh credentials may help (then the
/// request is rebuilt and sent once more at once). A 4xx other than 429 is a
/// [`ProviderError::Provider`] with the provider's message; running out of
/// retries is [`ProviderError::Unavailable`].
pub async fn send<F, Fut>(
    policy: RetryPolicy,
    endpoint: &str,
    mut make: F,
    unauthorized: impl Fn() -> bool,
) -> Result<reqwest::Response, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<reqwest::RequestBuilder, ProviderError>>,
{
    let mut attempt = 0;
    let mut refreshed = false;
    loop {
        let (retryable, wait, error) = match make().await?.send().await {
            Ok(r) if r.status().is_success() => return Ok(r),
            Ok(r) => {
                let status = r.status();
                let retry_after = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = r.text().await.unwrap_or_default();
                let message = format!("{status}: {}", text.chars().take(300).collect::<String>());
                // A revoked or expired token: fetch a new one and retry once, at once.
                if status == reqwest::StatusCode::UNAUTHORIZED && !refreshed && unauthorized() {
                    refreshed = true;
                    continue;
                }
                let retryable = status.as_u16() == 429 || status.is_server_error();
                (retryable, retry_after, message)
            }
            Err(e) => (true, None, e.to_string()),
        };
        if !retryable {
            return Err(ProviderError::Provider(error));
        }
        if attempt >= policy.max_retries {
            return Err(ProviderError::Unavailable(format!(
                "{endpoint} failed {} times, last: {error}",
                attempt + 1
            )));
        }
        tokio::time::sleep(
            wait.map_or_else(|| backoff(policy, attempt), |w| w.min(MAX_RETRY_AFTER)),
        )
        .await;
        attempt += 1;
    }
}

/// The wait before retry `attempt + 1`: exponential, capped, with up to 25 %
/// jitter so retrying instances do not stampede together.
fn backoff(policy: RetryPolicy, attempt: u32) -> Duration {
    let base = policy
        .backoff
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(MAX_BACKOFF);
    base + base.mul_f64(rand::random::<f64>() * 0.25)
}
