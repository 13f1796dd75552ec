//! A load run only goes where it is meant to: loopback, or a host the
//! operator names with `--target-allow`. A typo in `--url` must not load
//! production.

use std::net::IpAddr;

/// Checks `url`; an error says what to pass to allow it.
pub fn check_target(url: &str, allow: &[String]) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("--url `{url}`: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("--url `{url}`: use http:// or https://"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("--url `{url}` has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback || allow.iter().any(|a| a.eq_ignore_ascii_case(&host)) {
        return Ok(());
    }
    Err(format!(
        "refusing to load `{host}`: not loopback. If you mean it, pass `--target-allow {host}`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_passes_and_anything_else_needs_naming() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://[::1]:9/x",
            "http://127.9.9.9",
        ] {
            assert!(check_target(ok, &[]).is_ok(), "{ok}");
        }
        let err = check_target("https://memory-abc-uc.a.run.app", &[]).unwrap_err();
        assert!(
            err.contains("--target-allow memory-abc-uc.a.run.app"),
            "{err}"
        );
        assert!(
            check_target(
                "https://memory-abc-uc.a.run.app",
                &["memory-abc-uc.a.run.app".into()]
            )
            .is_ok()
        );
        // Naming one host allows only that host.
        assert!(check_target("https://evil.example", &["memory-abc-uc.a.run.app".into()]).is_err());
        assert!(check_target("ftp://127.0.0.1", &[]).is_err());
        assert!(check_target("not a url", &[]).is_err());
    }
}
