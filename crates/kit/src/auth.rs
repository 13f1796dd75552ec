//! API keys: who the caller is and what it may do (the `[auth]` table of
//! every service).
//!
//! Keys are kept as SHA-256 digests and compared in constant time. A key grants
//! one role on listed namespaces and may bind the caller to an agent, whose id
//! then replaces any `agent_id` the request names.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Error;

/// API keys and whether they are required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether requests need a key; may be false only on a loopback bind.
    pub enabled: bool,
    /// The keys.
    pub keys: Vec<KeyConfig>,
}

/// One API key as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// A label for logs (never the key).
    pub name: String,
    /// Hex SHA-256 of the key (preferred: the key itself is never stored).
    #[serde(default)]
    pub sha256: Option<String>,
    /// The key in clear (development only; hashed at load).
    #[serde(default)]
    pub key: Option<String>,
    /// What the key may do.
    pub role: Role,
    /// Namespaces it may touch; `"*"` means all.
    pub namespaces: Vec<String>,
    /// When set, the caller is this agent whatever the request says.
    #[serde(default)]
    pub agent_id: Option<String>,
}

/// What a key may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Get, list, search, export.
    Read,
    /// Also create, update, delete, import.
    Write,
    /// Also bulk deletes.
    Admin,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug)]
struct Key {
    name: String,
    digest: [u8; 32],
    role: Role,
    namespaces: Vec<String>,
    agent_id: Option<String>,
}

/// The configured keys.
#[derive(Debug)]
pub struct KeyRing {
    enabled: bool,
    keys: Vec<Key>,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The agent id that stands for every agent in visibility (`vis:*`); no
/// memory, message or key may name it as its agent.
pub const EVERY_AGENT: &str = "*";

/// Hex SHA-256 of a key, as `auth.keys[].sha256` expects.
pub fn key_digest_hex(secret: &str) -> String {
    digest(secret).iter().map(|b| format!("{b:02x}")).collect()
}

impl KeyRing {
    /// Builds the ring from configuration (clear keys are hashed here and dropped).
    pub fn from_config(config: &AuthConfig) -> Result<Self, Error> {
        let mut keys = Vec::with_capacity(config.keys.len());
        for k in &config.keys {
            let digest = match (&k.sha256, &k.key) {
                (Some(hex), None) => parse_hex32(hex).ok_or_else(|| {
                    Error::Config(format!(
                        "API key `{}`: sha256 must be 64 hex digits",
                        k.name
                    ))
                })?,
                (None, Some(clear)) => digest(clear),
                _ => {
                    return Err(Error::Config(format!(
                        "API key `{}` needs exactly one of `sha256` or `key`",
                        k.name
                    )));
                }
            };
            keys.push(Key {
                name: k.name.clone(),
                digest,
                role: k.role,
                namespaces: k.namespaces.clone(),
                agent_id: k.agent_id.clone(),
            });
        }
        Ok(Self {
            enabled: config.enabled,
            keys,
        })
    }

    /// Who presents `bearer` (the `Authorization` header's token, if any).
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, Error> {
        if !self.enabled {
            return Ok(Principal::anonymous());
        }
        let token = bearer.ok_or_else(|| {
            Error::Unauthenticated("missing API key: send `Authorization: Bearer <key>`".into())
        })?;
        let presented = digest(token);
        // Every key is compared, so the time taken does not depend on which matched.
        let mut found = None;
        for (i, k) in self.keys.iter().enumerate() {
            if bool::from(k.digest.ct_eq(&presented)) {
                found = Some(i);
            }
        }
        let key = found
            .and_then(|i| self.keys.get(i))
            .ok_or_else(|| Error::Unauthenticated("unknown API key".into()))?;
        Ok(Principal {
            key_name: Some(key.name.clone()),
            role: key.role,
            namespaces: key.namespaces.clone(),
            agent_id: key.agent_id.clone(),
        })
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's label (`None` when auth is off).
    pub key_name: Option<String>,
    role: Role,
    namespaces: Vec<String>,
    /// The agent the key is bound to.
    pub agent_id: Option<String>,
}

impl Principal {
    /// The caller when auth is off (loopback only): every right.
    pub fn anonymous() -> Self {
        Self {
            key_name: None,
            role: Role::Admin,
            namespaces: vec!["*".into()],
            agent_id: None,
        }
    }

    /// A service's own identity inside one namespace (a background job
    /// acting for that namespace only), as no agent.
    pub fn service(name: &str, namespace: &str, role: Role) -> Self {
        Self {
            key_name: Some(name.to_owned()),
            role,
            namespaces: vec![namespace.to_owned()],
            agent_id: None,
        }
    }

    /// The namespaces the key covers (`*` for every one).
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Whether the key covers `namespace` at all.
    pub fn covers(&self, namespace: &str) -> bool {
        self.namespaces.iter().any(|n| n == "*" || n == namespace)
    }

    /// Fails unless the key grants `role` on `namespace`.
    pub fn require(&self, namespace: &str, role: Role) -> Result<(), Error> {
        if !self.covers(namespace) {
            return Err(Error::Forbidden(format!(
                "this API key has no access to namespace `{namespace}`"
            )));
        }
        if self.role < role {
            return Err(Error::Forbidden(format!(
                "this API key is `{}` on `{namespace}`; the operation needs `{}`",
                self.role.name(),
                role.name()
            )));
        }
        Ok(())
    }

    /// The agent the caller acts as: the key's binding, else what the request says.
    pub fn acting_agent(&self, requested: Option<&str>) -> Option<String> {
        self.agent_id
            .clone()
            .or_else(|| requested.map(str::to_owned))
    }
}

/// Anything that holds the key ring can authenticate requests.
impl<S> FromRequestParts<S> for Principal
where
    Arc<KeyRing>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ring = Arc::<KeyRing>::from_ref(state);
        if !ring.enabled {
            // Auth off (loopback only): whatever Authorization says is ignored.
            return Ok(Principal::anonymous());
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim)
                    .ok_or_else(|| {
                        Error::Unauthenticated("Authorization header must be `Bearer <key>`".into())
                    })
            })
            .transpose()?;
        ring.authenticate(header)
    }
}

#[cfg(test)]
mod tests {
    use super::KeyConfig;
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::from_config(&AuthConfig {
            enabled: true,
            keys: vec![
                KeyConfig {
                    name: "reader".into(),
                    sha256: Some(key_digest_hex("r-secret")),
                    key: None,
                    role: Role::Read,
                    namespaces: vec!["a".into()],
                    agent_id: None,
                },
                KeyConfig {
                    name: "bot".into(),
                    sha256: None,
                    key: Some("w-secret".into()),
                    role: Role::Write,
                    namespaces: vec!["*".into()],
                    agent_id: Some("bot-1".into()),
                },
            ],
        })
        .unwrap()
    }

    #[test]
    fn keys_grant_roles_on_namespaces_and_bind_agents() {
        let ring = ring();
        assert!(matches!(
            ring.authenticate(None),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            ring.authenticate(Some("nope")),
            Err(Error::Unauthenticated(_))
        ));
        let reader = ring.authenticate(Some("r-secret")).unwrap();
        assert!(reader.require("a", Role::Read).is_ok());
        assert!(matches!(
            reader.require("a", Role::Write),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            reader.require("b", Role::Read),
            Err(Error::Forbidden(_))
        ));
        let bot = ring.authenticate(Some("w-secret")).unwrap();
        assert!(bot.require("anything", Role::Write).is_ok());
        assert_eq!(
            bot.acting_agent(Some("someone-else")).as_deref(),
            Some("bot-1")
        );
        assert_eq!(reader.acting_agent(Some("x")).as_deref(), Some("x"));
    }

    #[test]
    fn bad_digests_are_configuration_errors() {
        let bad = AuthConfig {
            enabled: true,
            keys: vec![KeyConfig {
                name: "k".into(),
                sha256: Some("zz".into()),
                key: None,
                role: Role::Read,
                namespaces: vec![],
                agent_id: None,
            }],
        };
        assert!(KeyRing::from_config(&bad).is_err());
    }
}
