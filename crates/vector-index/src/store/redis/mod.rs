//! The Redis store: records as hashes plus a change stream, for Memorystore.
//!
//! Key layout (documented in docs/storage.md); `{c}` is the collection name as
//! a hash tag, so one collection's keys share a Redis Cluster slot and a Lua
//! call may touch all of them:
//! - `vi:{c}:r:<uuid>`: hash `v` (the vector field: f32 LE, or tagged f16 as
//!   [`RedisConfig::vector_precision`] says; `codec`), `p` (payload JSON), `ver`;
//! - `vi:{c}:seq`: the last version handed out (`INCR`);
//! - `vi:{c}:log`: stream of changes, `op` (`put` | `del`), `id`, `ver`;
//! - `vi:{c}:snap`: snapshot manifest hash (`gen`, `chunks`, `bytes`, `crc`, `position`);
//! - `vi:{c}:snap:<gen>:<i>`: snapshot chunks, each at most 64 MiB;
//! - `vi:{c}:snapgen`: the last snapshot generation handed out (`INCR`).
//!
//! Each write is one Lua script: check the expected version, bump the
//! counter, write or delete the hash and append to the stream. Redis runs a
//! script atomically, so a record change and its stream entry exist together
//! or not at all.
//!
//! [`feed`] reads the change stream; [`snapshot`] stores index snapshots in
//! chunks.

mod feed;
mod snapshot;

pub use self::feed::RedisFeed;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, RedisError, Script};
use uuid::Uuid;

use super::codec;
use super::{Cursor, Entry, Expect, NewPoint, Page, Position, Record, Store, VectorPrecision};
use crate::error::{IndexError, Result};
use crate::payload::Payload;

const PUT: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'ver')
local found = cur and tonumber(cur) or -1
if ARGV[1] == 'absent' and found ~= -1 then return {0, found} end
if ARGV[1] == 'version' and found ~= tonumber(ARGV[2]) then return {0, found} end
local ver = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'p', ARGV[4], 'd', ARGV[7], 'ver', ver)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'op', 'put', 'id', ARGV[5], 'ver', ver)
return {1, ver}
"#;

/// Every point or none: KEYS are the n record keys, then the stream and the
/// counter; ARGV is n, the stream length, then six per point (mode,
/// expected version, vector, payload, id, document). All checks come first,
/// against the versions the batch itself gives (the counter's next values),
/// so a refusal writes nothing. Replies `{1, v1..vn}` or `{0, i, found}`.
const PUT_ALL: &str = r#"
local n = tonumber(ARGV[1])
local stream = KEYS[n + 1]
local seq = KEYS[n + 2]
local next = tonumber(redis.call('GET', seq) or '0')
local batch = {}
for i = 1, n do
  local a = 2 + (i - 1) * 6
  local found = batch[KEYS[i]]
  if found == nil then
    local cur = redis.call('HGET', KEYS[i], 'ver')
    found = cur and tonumber(cur) or -1
  end
  if ARGV[a + 1] == 'absent' and found ~= -1 then return {0, i, found} end
  if ARGV[a + 1] == 'version' and found ~= tonumber(ARGV[a + 2]) then return {0, i, found} end
  batch[KEYS[i]] = next + i
end
local reply = {1}
for i = 1, n do
  local a = 2 + (i - 1) * 6
  local ver = redis.call('INCR', seq)
  redis.call('HSET', KEYS[i], 'v', ARGV[a + 3], 'p', ARGV[a + 4], 'd', ARGV[a + 6], 'ver', ver)
  redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], '*', 'op', 'put', 'id', ARGV[a + 5], 'ver', ver)
  reply[i + 1] = ver
end
return reply
"#;

const DELETE: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'ver')
local found = cur and tonumber(cur) or -1
if ARGV[1] == 'absent' and found ~= -1 then return {0, found} end
if ARGV[1] == 'version' and found ~= tonumber(ARGV[2]) then return {0, found} end
if found == -1 then return {1, -1} end
local ver = redis.call('INCR', KEYS[3])
redis.call('DEL', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'op', 'del', 'id', ARGV[3], 'ver', ver)
return {1, found}
"#;

/// How to reach Redis and how long to wait for it.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`, or `rediss://` for TLS.
    pub url: String,
    /// Collection name; becomes the hash tag of every key.
    pub collection: String,
    /// Longest wait for one command before it fails as `Unavailable`.
    pub op_timeout: Duration,
    /// Longest wait to (re)connect.
    pub connect_timeout: Duration,
    /// Approximate number of change-stream entries kept (`XADD MAXLEN ~`).
    pub stream_max_len: u64,
    /// Replicas that must acknowledge each write (`WAIT`); 0 to skip.
    pub wait_replicas: u32,
    /// Largest snapshot chunk stored under one key (at most 64 MiB).
    pub snapshot_chunk_bytes: usize,
    /// PEM certificate(s) of the CA that signed the server's certificate, for
    /// `rediss://` (Memorystore's server CA); `None` trusts the system's roots.
    pub ca_cert: Option<Vec<u8>>,
    /// `AUTH` password, kept out of the URL (e.g. from Secret Manager); it
    /// replaces any password the URL carries.
    pub password: Option<String>,
    /// What new records' vectors are written at (older ones read as they are).
    pub vector_precision: VectorPrecision,
}

impl RedisConfig {
    /// Defaults for `url` and `collection`.
    pub fn new(url: impl Into<String>, collection: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            collection: collection.into(),
            op_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            stream_max_len: 1_000_000,
            wait_replicas: 0,
            // Small chunks load and store several times faster than 32 MiB ones
            // through redis-rs (measured: 512 MiB loads in 0.43 s vs 1.03 s).
            snapshot_chunk_bytes: 2 << 20,
            ca_cert: None,
            password: None,
            vector_precision: VectorPrecision::F32,
        }
    }
}

/// A collection's records in Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    config: RedisConfig,
    prefix: String,
    put: Script,
    put_all: Script,
    delete: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("collection", &self.config.collection)
            .finish()
    }
}

/// Maps a client error: unreachable or slow Redis is `Unavailable`, the rest `Storage`.
fn redis_error(e: RedisError) -> IndexError {
    if e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_io_error() {
        IndexError::Unavailable(e.to_string())
    } else {
        IndexError::Storage(e.to_string())
    }
}

/// A reconnecting connection to the configured Redis (TLS for `rediss://`).
async fn connect_manager(
    config: &RedisConfig,
    response_timeout: Duration,
) -> Result<ConnectionManager> {
    let invalid = |e: RedisError| IndexError::InvalidParameter {
        name: "redis url",
        reason: e.to_string(),
    };
    let mut info = config
        .url
        .as_str()
        .into_connection_info()
        .map_err(invalid)?;
    if let Some(password) = &config.password {
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    let client = match &config.ca_cert {
        Some(pem) => redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            },
        ),
        None => redis::Client::open(info),
    }
    .map_err(invalid)?;
    let manager = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    tokio::time::timeout(
        config.connect_timeout + config.op_timeout,
        ConnectionManager::new_with_config(client, manager),
    )
    .await
    .map_err(|_| IndexError::Unavailable("timed out connecting to Redis".into()))?
    .map_err(redis_error)
}

impl RedisStore {
    /// Connects; fails with `Unavailable` if Redis cannot be reached in time.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let c = &config.collection;
        if c.is_empty() || c.contains(['{', '}']) {
            return Err(IndexError::InvalidParameter {
                name: "collection",
                reason: format!("`{c}` must be non-empty and contain no braces"),
            });
        }
        let conn = connect_manager(&config, config.op_timeout).await?;
        Ok(Self {
            prefix: format!("vi:{{{c}}}:"),
            conn,
            config,
            put: Script::new(PUT),
            put_all: Script::new(PUT_ALL),
            delete: Script::new(DELETE),
        })
    }

    fn record_key(&self, id: Uuid) -> String {
        format!("{}r:{id}", self.prefix)
    }

    /// `HMGET` of `fields` on the record hash of each of `ids`, in one pipeline.
    async fn hmget_each<T: redis::FromRedisValue>(
        &self,
        ids: &[Uuid],
        fields: &[&str],
    ) -> Result<Vec<T>> {
        // An empty pipeline is an error in redis-rs.
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET").arg(self.record_key(*id)).arg(fields);
        }
        pipe.query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)
    }

    /// The change stream's key.
    pub fn stream_key(&self) -> String {
        format!("{}log", self.prefix)
    }

    fn seq_key(&self) -> String {
        format!("{}seq", self.prefix)
    }

    /// Waits for replicas if configured; a write not replicated in time is reported.
    async fn replicate(&self) -> Result<()> {
        let n = self.config.wait_replicas;
        if n == 0 {
            return Ok(());
        }
        // Half the command timeout, so Redis answers before the client gives up.
        let timeout_ms = (self.config.op_timeout.as_millis() / 2).max(1) as u64;
        let acked: u32 = redis::cmd("WAIT")
            .arg(n)
            .arg(timeout_ms)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        if acked < n {
            return Err(IndexError::Unavailable(format!(
                "write applied on the primary but only {acked} of {n} replicas acknowledged it"
            )));
        }
        Ok(())
    }
}

fn mode(expect: Expect) -> (&'static str, u64) {
    match expect {
        Expect::Any => ("any", 0),
        Expect::Absent => ("absent", 0),
        Expect::Version(v) => ("version", v),
    }
}

/// Turns a script's `{ok, n}` reply into a version or a conflict.
fn outcome(id: Uuid, expect: Expect, reply: &[i64]) -> Result<Option<u64>> {
    let (ok, n) = match reply {
        [ok, n] => (*ok, *n),
        _ => {
            return Err(IndexError::storage(format!(
                "unexpected script reply {reply:?}"
            )));
        }
    };
    let n = u64::try_from(n).ok();
    if ok == 1 {
        Ok(n)
    } else {
        Err(IndexError::VersionConflict {
            id,
            expected: expect,
            found: n,
        })
    }
}

impl Store for RedisStore {
    fn vector_precision(&self) -> VectorPrecision {
        self.config.vector_precision
    }

    async fn save_snapshot(&self, bytes: Vec<u8>, position: Position) -> Result<()> {
        self.save_chunks(bytes, position).await
    }

    async fn load_snapshot(&self) -> Result<Option<Vec<u8>>> {
        self.load_chunks().await
    }

    async fn put_document(
        &self,
        id: Uuid,
        vector: &[f32],
        payload: &Payload,
        document: &[u8],
        expect: Expect,
    ) -> Result<u64> {
        let (mode, expected) = mode(expect);
        let reply: Vec<i64> = self
            .put
            .key(self.record_key(id))
            .key(self.stream_key())
            .key(self.seq_key())
            .arg(mode)
            .arg(expected)
            .arg(codec::vector_bytes(vector, self.config.vector_precision))
            .arg(codec::payload_bytes(payload)?)
            .arg(id.to_string())
            .arg(self.config.stream_max_len)
            .arg(document)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        let version = outcome(id, expect, &reply)?
            .ok_or_else(|| IndexError::storage("put script returned no version"))?;
        self.replicate().await?;
        Ok(version)
    }

    async fn put_many(&self, items: &[NewPoint]) -> Result<Vec<u64>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Loads the script if the server lacks it, so EVALSHA below cannot miss.
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(PUT)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        let mut pipe = redis::pipe();
        for p in items {
            pipe.cmd("EVALSHA")
                .arg(self.put.get_hash())
                .arg(3)
                .arg(self.record_key(p.id))
                .arg(self.stream_key())
                .arg(self.seq_key())
                .arg("any")
                .arg(0)
                .arg(codec::vector_bytes(&p.vector, self.config.vector_precision))
                .arg(codec::payload_bytes(&p.payload)?)
                .arg(p.id.to_string())
                .arg(self.config.stream_max_len)
                .arg(&p.document);
        }
        let replies: Vec<Vec<i64>> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        let mut versions = Vec::with_capacity(replies.len());
        for (p, reply) in items.iter().zip(&replies) {
            let v = outcome(p.id, Expect::Any, reply)?
                .ok_or_else(|| IndexError::storage("put script returned no version"))?;
            versions.push(v);
        }
        self.replicate().await?;
        Ok(versions)
    }

    async fn put_all(&self, items: &[(NewPoint, Expect)]) -> Result<Vec<u64>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = self.put_all.prepare_invoke();
        for (p, _) in items {
            call.key(self.record_key(p.id));
        }
        call.key(self.stream_key())
            .key(self.seq_key())
            .arg(items.len())
            .arg(self.config.stream_max_len);
        for (p, expect) in items {
            let (mode, expected) = mode(*expect);
            call.arg(mode)
                .arg(expected)
                .arg(codec::vector_bytes(&p.vector, self.config.vector_precision))
                .arg(codec::payload_bytes(&p.payload)?)
                .arg(p.id.to_string())
                .arg(&p.document);
        }
        let reply: Vec<i64> = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        match reply.as_slice() {
            [1, versions @ ..] if versions.len() == items.len() => {
                let versions = versions
                    .iter()
                    .map(|v| u64::try_from(*v).map_err(|_| IndexError::storage("negative version")))
                    .collect::<Result<Vec<u64>>>()?;
                self.replicate().await?;
                Ok(versions)
            }
            [0, i, found] => {
                let (p, expect) = usize::try_from(*i - 1)
                    .ok()
                    .and_then(|i| items.get(i))
                    .ok_or_else(|| {
                        IndexError::storage(format!("unexpected script reply {reply:?}"))
                    })?;
                Err(IndexError::VersionConflict {
                    id: p.id,
                    expected: *expect,
                    found: u64::try_from(*found).ok(),
                })
            }
            _ => Err(IndexError::storage(format!(
                "unexpected script reply {reply:?}"
            ))),
        }
    }

    async fn delete(&self, id: Uuid, expect: Expect) -> Result<Option<u64>> {
        let (mode, expected) = mode(expect);
        let reply: Vec<i64> = self
            .delete
            .key(self.record_key(id))
            .key(self.stream_key())
            .key(self.seq_key())
            .arg(mode)
            .arg(expected)
            .arg(id.to_string())
            .arg(self.config.stream_max_len)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        let found = outcome(id, expect, &reply)?;
        if found.is_some() {
            self.replicate().await?;
        }
        Ok(found)
    }

    async fn get(&self, id: Uuid) -> Result<Option<Record>> {
        let fields: Fields = redis::cmd("HMGET")
            .arg(self.record_key(id))
            .arg(&RECORD_FIELDS[..])
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        parse_record(id, fields)
    }

    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Option<Record>>> {
        let rows: Vec<Fields> = self.hmget_each(ids, &RECORD_FIELDS).await?;
        ids.iter()
            .zip(rows)
            .map(|(id, row)| parse_record(*id, row))
            .collect()
    }

    async fn get_entries(&self, ids: &[Uuid]) -> Result<Vec<Option<Entry>>> {
        let rows: Vec<EntryFields> = self.hmget_each(ids, &ENTRY_FIELDS).await?;
        ids.iter()
            .zip(rows)
            .map(|(id, row)| parse_entry(*id, row))
            .collect()
    }

    async fn scan(&self, cursor: Cursor, limit: usize) -> Result<Page> {
        let start: u64 = match cursor.0.as_str() {
            "" => 0,
            s => s
                .parse()
                .map_err(|_| IndexError::storage("invalid scan cursor"))?,
        };
        let mut conn = self.conn.clone();
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(start)
            .arg("MATCH")
            .arg(format!("{}r:*", self.prefix))
            .arg("COUNT")
            .arg(limit.max(1))
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("HMGET").arg(k).arg(&RECORD_FIELDS[..]);
        }
        // An empty pipeline is an error in redis-rs, and a page may match no keys.
        let rows: Vec<Fields> = if keys.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await.map_err(redis_error)?
        };
        let record_prefix = format!("{}r:", self.prefix);
        let mut records = Vec::with_capacity(rows.len());
        for (key, row) in keys.iter().zip(rows) {
            let id = key
                .strip_prefix(&record_prefix)
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| IndexError::storage(format!("unexpected key {key}")))?;
            // Deleted between SCAN and HMGET: nothing to return.
            if let Some(r) = parse_record(id, row)? {
                records.push(r);
            }
        }
        Ok(Page {
            records,
            next: (next != 0).then(|| Cursor(next.to_string())),
        })
    }
}

/// The record hash fields every read asks for, in the order of [`Fields`].
const RECORD_FIELDS: [&str; 4] = ["v", "p", "ver", "d"];

/// `HMGET` of [`RECORD_FIELDS`] on a record hash.
type Fields = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<u64>,
    Option<Vec<u8>>,
);

/// The record hash fields an entry read asks for (no `v`: the vector).
const ENTRY_FIELDS: [&str; 3] = ["p", "ver", "d"];

/// `HMGET` of [`ENTRY_FIELDS`] on a record hash.
type EntryFields = (Option<Vec<u8>>, Option<u64>, Option<Vec<u8>>);

fn parse_entry(id: Uuid, (payload, version, document): EntryFields) -> Result<Option<Entry>> {
    match (payload, version) {
        (Some(p), Some(version)) => Ok(Some(Entry {
            id,
            version,
            payload: codec::payload_from(&p)?,
            document: document.unwrap_or_default(),
        })),
        (None, None) => Ok(None),
        _ => Err(IndexError::storage(format!(
            "record {id} is missing fields"
        ))),
    }
}

fn parse_record(id: Uuid, (vector, payload, version, document): Fields) -> Result<Option<Record>> {
    match (vector, payload, version) {
        (Some(v), Some(p), Some(version)) => Ok(Some(Record {
            id,
            version,
            vector: codec::vector_from(&v)?,
            payload: codec::payload_from(&p)?,
            document: document.unwrap_or_default(),
        })),
        (None, None, None) => Ok(None),
        _ => Err(IndexError::storage(format!(
            "record {id} is missing fields"
        ))),
    }
}
