//! Where a service keeps its collections, as configured ([`StorageConfig`]),
//! and opening one there ([`StorePlace::open`]): a redb file per collection
//! in a directory, or Redis shared by every instance (then the collection
//! follows the other instances' writes).
//!
//! Both services (memory-server and the orchestrator) read the same
//! `[storage]` section, so it is described once, here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::collection::CollectionConfig;
use crate::durable::DurableCollection;
use crate::error::{IndexError, Result};
use crate::store::{AnyStore, EmbeddedStore, RedisConfig, RedisStore, VectorPrecision};

/// Which store backs a service's collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageBackend {
    /// A `redb` file per collection under `storage.path` (one process).
    Embedded,
    /// Redis / Memorystore at `storage.redis_url` (several instances).
    Redis,
}

/// The `[storage]` section of a service's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Embedded or Redis.
    pub backend: StorageBackend,
    /// Directory of the embedded store.
    pub path: PathBuf,
    /// `redis://host:port[/db]`, or `rediss://` for TLS (Memorystore in-transit
    /// encryption); set it through the environment when it carries a password.
    pub redis_url: String,
    /// Redis `AUTH` password (Memorystore AUTH string); set it through
    /// `ORCHESTRA__STORAGE__REDIS_PASSWORD`, never in a file.
    pub redis_password: Option<String>,
    /// PEM file of the CA that signed the Redis server's certificate
    /// (Memorystore's server CA); the system's roots when unset.
    pub redis_ca_cert_file: Option<PathBuf>,
    /// Longest wait for one Redis command, in milliseconds.
    pub op_timeout_ms: u64,
    /// Replicas each Redis write waits for (`WAIT`; 0 = none).
    pub wait_replicas: u32,
    /// Seconds between index snapshots (0 = only at shutdown).
    pub snapshot_every_secs: u64,
    /// Seconds between sweeps of expired records.
    pub sweep_every_secs: u64,
    /// redb's page cache per embedded collection, in MiB. What it does not
    /// hold is read through the OS page cache, which the server's RSS does
    /// not count; searches read only their results from the store.
    pub cache_mib: usize,
    /// Entries read recently, kept decoded per embedded collection, in MiB
    /// (0: none): a memory searches keep finding is not read from redb
    /// each time. Not on Redis, where other instances write too.
    pub entry_cache_mib: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Embedded,
            path: PathBuf::from("./data"),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_password: None,
            redis_ca_cert_file: None,
            op_timeout_ms: 2_000,
            wait_replicas: 0,
            snapshot_every_secs: 600,
            sweep_every_secs: 60,
            cache_mib: EmbeddedStore::DEFAULT_CACHE_MIB,
            entry_cache_mib: EmbeddedStore::DEFAULT_ENTRY_CACHE_MIB,
        }
    }
}

/// Where the store is, for the start-up log and `/readyz` (never a password).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreLocation {
    /// `embedded` or `redis`.
    pub backend: StorageBackend,
    /// The embedded store's directory, or the Redis URL without credentials.
    pub location: String,
}

impl StorageConfig {
    /// Where records are kept, with any password in the Redis URL masked.
    pub fn location(&self) -> StoreLocation {
        let location = match self.backend {
            StorageBackend::Embedded => self.path.display().to_string(),
            StorageBackend::Redis => redact_userinfo(&self.redis_url),
        };
        StoreLocation {
            backend: self.backend,
            location,
        }
    }
}

/// `scheme://user:secret@host/...` as `scheme://***@host/...`.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// A configured place, ready to open collections in.
pub enum StorePlace<'a> {
    /// redb files in this directory, each with a page cache and an entry
    /// cache of these sizes in bytes.
    Embedded(&'a std::path::Path, usize, usize),
    /// Redis, with the CA certificate read once.
    Redis(&'a StorageConfig, Option<Vec<u8>>),
}

impl<'a> StorePlace<'a> {
    /// The place `config` names: creates the embedded directory, or reads the
    /// Redis CA certificate file.
    pub fn of(config: &'a StorageConfig) -> Result<Self> {
        Ok(match config.backend {
            StorageBackend::Embedded => {
                std::fs::create_dir_all(&config.path).map_err(|e| {
                    IndexError::Storage(format!("storage.path {}: {e}", config.path.display()))
                })?;
                Self::Embedded(
                    &config.path,
                    config.cache_mib.saturating_mul(1 << 20),
                    config.entry_cache_mib.saturating_mul(1 << 20),
                )
            }
            StorageBackend::Redis => {
                let ca_cert = match &config.redis_ca_cert_file {
                    Some(path) => Some(std::fs::read(path).map_err(|e| {
                        IndexError::Storage(format!(
                            "storage.redis_ca_cert_file {}: {e}",
                            path.display()
                        ))
                    })?),
                    None => None,
                };
                Self::Redis(config, ca_cert)
            }
        })
    }

    /// Opens collection `name`, its records keeping vectors at the
    /// precision of `index`'s quantization; on Redis it follows the other instances'
    /// writes (the follower ends when the collection is dropped). An embedded
    /// file held by another process is [`IndexError::InUse`].
    pub async fn open(
        &self,
        name: &str,
        index: CollectionConfig,
    ) -> Result<Arc<DurableCollection<AnyStore>>> {
        // Records keep vectors no finer than the index searches them.
        let precision = VectorPrecision::for_index(index.graph.quantization);
        match self {
            Self::Embedded(dir, pages, entries) => {
                let path = dir.join(format!("{name}.redb"));
                let store =
                    EmbeddedStore::open_with(path, *pages, precision)?.with_entry_cache(*entries);
                DurableCollection::open(index, store.into()).await
            }
            Self::Redis(config, ca_cert) => {
                let mut rc = RedisConfig::new(config.redis_url.clone(), name);
                rc.op_timeout = Duration::from_millis(config.op_timeout_ms);
                rc.wait_replicas = config.wait_replicas;
                rc.ca_cert = ca_cert.clone();
                rc.password = config.redis_password.clone().filter(|p| !p.is_empty());
                rc.vector_precision = precision;
                let store = RedisStore::connect(rc).await?;
                let feed = store.feed().await?;
                let (collection, _follower) =
                    DurableCollection::open_following(index, store.into(), feed).await?;
                Ok(collection)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_locations_never_show_a_password() {
        let mut s = StorageConfig::default();
        assert_eq!(s.location().location, "./data");
        s.backend = StorageBackend::Redis;
        for (url, shown) in [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis://:hunter2@10.0.0.3:6379/0",
                "redis://***@10.0.0.3:6379/0",
            ),
            ("rediss://user:p@ss@host:6378", "rediss://***@host:6378"),
            ("not a url", "not a url"),
        ] {
            s.redis_url = url.into();
            assert_eq!(s.location().location, shown);
        }
    }
}
