//! The memory operations, independent of transport (REST today, MCP next).
//!
//! A memory is one point of a [`DurableCollection`]: its vector, a payload the
//! index filters on, and a JSON document (text, metadata, history) stored beside
//! it in the same atomic record. Writes go through the collection, so an
//! acknowledged memory is already readable and searchable on this instance and
//! reaches the others through the change stream.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::durable::DurableCollection;
use vector_index::store::{Expect, NewPoint, Record, Store};
use vector_index::{Field, Filter, IndexError, Payload, TimeField};

use crate::auth::{Principal, Role};
use crate::config::Limits;
use crate::embed::{EmbedError, Embedder, Purpose};
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::model::{
    BulkDelete, BulkDeleted, Created, History, Imported, Kind, Memory, MemoryFilter, MemoryPage,
    MemoryPatch, NamespaceList, NamespaceSummary, NewMemory, PortableMemory, Revision, Visibility,
};
use crate::validate;
use template::Fields;

mod context;
mod model_binding;
mod reindex;
mod search;
mod sessions;
mod template;

pub use model_binding::{Binding, ModelBindings, REGISTRY_DIMS, REGISTRY_NAME};
pub use search::SearchSettings;
pub use template::Template;

/// Locks serialising creates that share a duplicate or idempotency key.
const CREATE_LOCKS: usize = 256;
/// Retries of a read-modify-write that lost a race without `If-Match`.
const PATCH_RETRIES: usize = 5;

/// The document stored beside each memory's vector.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Doc {
    text: String,
    #[serde(default)]
    metadata: Map<String, Value>,
    #[serde(default)]
    visibility: Visibility,
    content_hash: String,
    embedding_model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
    /// Prior states, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    history: Vec<Revision>,
    /// The caller gave the vector: it is never re-embedded from text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    client_vector: bool,
}

/// Attribute prefixes in the index payload (see [`Payload::attributes`]).
mod attr {
    /// `vis:*` for shared memories, `vis:<agent>` for private ones.
    pub const VISIBLE: &str = "vis:";
    /// `m:<key>=<JSON value>` for each top-level scalar of the metadata.
    pub const META: &str = "m:";
    /// `dup:<digest of scope and text>`.
    pub const DUPLICATE: &str = "dup:";
    /// `idem:<digest of namespace, author agent and idempotency key>`.
    pub const IDEMPOTENCY: &str = "idem:";
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first 16 bytes of the SHA-256 of `parts`, each followed by a NUL so
/// that `["ab", ""]` and `["a", "b"]` differ.
fn digest_bytes(parts: &[&str]) -> [u8; 16] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&h.finalize()[..16]);
    bytes
}

fn digest(parts: &[&str]) -> String {
    hex(&digest_bytes(parts))
}

/// A record id derived from `parts`: every instance computes the same one.
pub(crate) fn derived_id(parts: &[&str]) -> Uuid {
    Uuid::new_v8(digest_bytes(parts))
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The metadata attribute for `key = value`, if the value is a filterable scalar.
fn meta_attr(key: &str, value: &Value) -> Option<String> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
            Some(format!("{}{key}={value}", attr::META))
        }
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// The scope in which identical text counts as a duplicate.
fn duplicate_attr(ns: &str, user: Option<&str>, owner: Option<&str>, text: &str) -> String {
    format!(
        "{}{}",
        attr::DUPLICATE,
        digest(&[ns, user.unwrap_or(""), owner.unwrap_or(""), text])
    )
}

/// Idempotency keys are scoped to the agent that wrote (none for an unbound
/// key acting as no agent): another agent reusing a key gets its own memory,
/// never a replay of one it might not be allowed to see.
fn idempotency_attr(ns: &str, agent: Option<&str>, key: &str) -> String {
    format!(
        "{}{}",
        attr::IDEMPOTENCY,
        digest(&[ns, agent.unwrap_or(""), key])
    )
}

/// The attribute every shared memory carries (what all readers of its namespace see).
pub fn shared_attribute() -> String {
    visibility_attr(Visibility::Shared, None)
}

fn visibility_attr(visibility: Visibility, author: Option<&str>) -> String {
    match (visibility, author) {
        (Visibility::Private, Some(a)) => format!("{}{a}", attr::VISIBLE),
        _ => format!("{}*", attr::VISIBLE),
    }
}

/// The duplicate-scope key and idempotency key of a memory.
fn scope_keys(p: &Payload, doc: &Doc) -> (String, Option<String>) {
    let owner = (doc.visibility == Visibility::Private)
        .then_some(p.agent_id.as_deref())
        .flatten();
    let dup = duplicate_attr(&p.namespace, p.user_id.as_deref(), owner, &doc.text);
    let idem = doc
        .idempotency_key
        .as_deref()
        .map(|k| idempotency_attr(&p.namespace, p.agent_id.as_deref(), k));
    (dup, idem)
}

/// The index attributes of a memory: who may see it, its scope keys, its metadata.
fn attributes(p: &Payload, doc: &Doc, (dup, idem): (String, Option<String>)) -> Vec<String> {
    let mut a = vec![visibility_attr(doc.visibility, p.agent_id.as_deref()), dup];
    a.extend(idem);
    a.extend(doc.metadata.iter().filter_map(|(k, v)| meta_attr(k, v)));
    a
}

/// Tags with repeats dropped, first occurrence kept.
fn distinct_tags(tags: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    tags.iter().filter(|t| seen.insert(*t)).cloned().collect()
}

/// A memory's state as a history entry.
fn revision(m: Memory) -> Revision {
    Revision {
        version: m.version,
        text: m.text,
        tags: m.tags,
        metadata: m.metadata,
        kind: m.kind,
        visibility: m.visibility,
        updated_at: m.updated_at,
    }
}

/// Prefixes a 400 with where in a batch it happened (`memories[3]`, `line 7`).
fn located(e: ApiError, label: String, key: &str, at: usize) -> ApiError {
    match e {
        ApiError::BadRequest { message, details } => ApiError::BadRequest {
            message: format!("{label}: {message}"),
            details: serde_json::json!({ key: at, "field": details.get("field") }),
        },
        other => other,
    }
}

impl Doc {
    /// The document of a memory record.
    fn of(record: &Record) -> ApiResult<Self> {
        serde_json::from_slice(&record.document)
            .map_err(|e| ApiError::Internal(format!("memory {} is unreadable: {e}", record.id)))
    }

    /// The text the stored vector was embedded from: the contextual text, or,
    /// for memories written before contextual text was indexed, their text.
    fn embedded_from<'a>(&'a self, payload: &'a Payload) -> &'a str {
        if payload.text.is_empty() {
            &self.text
        } else {
            &payload.text
        }
    }
}

fn embed_error(e: EmbedError) -> ApiError {
    match e {
        EmbedError::Unavailable(m) => ApiError::Unavailable(m),
        EmbedError::Provider(m) => ApiError::BadGateway(format!("embedding provider: {m}")),
    }
}

/// The memory operations over one durable collection.
pub struct MemoryService<S: Store> {
    collection: Arc<DurableCollection<S>>,
    embedder: Arc<dyn Embedder>,
    limits: Limits,
    metrics: Arc<Metrics>,
    create_locks: Vec<tokio::sync::Mutex<()>>,
    models: ModelBindings<S>,
    search: SearchSettings,
}

/// A new memory's vector and the contextual text it was embedded from.
struct Embedded {
    vector: Vec<f32>,
    /// The rendered template: embedded (unless the caller gave the vector) and keyword-indexed.
    text: String,
    /// The caller gave the vector.
    client: bool,
}

/// A validated create, ready to write.
struct Prepared {
    id: Uuid,
    vector: Vec<f32>,
    payload: Payload,
    doc: Doc,
    dup: String,
    idem: Option<String>,
}

impl<S: Store> MemoryService<S> {
    /// A service over `collection`, embedding with `embedder`; `registry`
    /// holds which model each namespace is bound to.
    pub fn new(
        collection: Arc<DurableCollection<S>>,
        registry: Arc<DurableCollection<S>>,
        embedder: Arc<dyn Embedder>,
        limits: Limits,
        metrics: Arc<Metrics>,
        search: SearchSettings,
    ) -> Self {
        Self {
            search,
            models: ModelBindings::new(registry, embedder.model_id(), embedder.dims()),
            collection,
            embedder,
            limits,
            metrics,
            create_locks: (0..CREATE_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The collection (for readiness and metrics).
    pub fn collection(&self) -> &Arc<DurableCollection<S>> {
        &self.collection
    }

    /// The namespace → model registry.
    pub fn models(&self) -> &ModelBindings<S> {
        &self.models
    }

    /// The metrics it records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The embedding model's id.
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    /// The embedder (for what `/readyz` says of it).
    pub fn embedder(&self) -> &dyn Embedder {
        self.embedder.as_ref()
    }

    async fn embed(&self, texts: Vec<String>, purpose: Purpose) -> ApiResult<Vec<Vec<f32>>> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "embed",
            model = self.embedder.model_id(),
            texts = texts.len()
        );
        let result =
            tracing::Instrument::instrument(self.embedder.embed(&texts, purpose), span).await;
        self.metrics.embed(started, result.is_ok());
        let vectors = result.map_err(embed_error)?;
        if vectors.len() != texts.len() || vectors.iter().any(|v| v.len() != self.embedder.dims()) {
            return Err(ApiError::Internal(
                "embedder returned the wrong number or size of vectors".into(),
            ));
        }
        Ok(vectors)
    }

    /// Runs a store operation, recording its latency and (real) failures.
    async fn timed<T>(
        &self,
        op: &str,
        operation: impl std::future::Future<Output = Result<T, IndexError>>,
    ) -> Result<T, IndexError> {
        let started = Instant::now();
        let span = tracing::info_span!("store", otel.name = %format!("store {op}"), op);
        let result = tracing::Instrument::instrument(operation, span).await;
        let failed = matches!(
            result,
            Err(IndexError::Unavailable(_) | IndexError::Storage(_))
        );
        self.metrics.store_op(op, started, !failed);
        result
    }

    fn lock_index(&self, key: &str) -> usize {
        let h = Sha256::digest(key.as_bytes());
        usize::from(h[0]) % self.create_locks.len()
    }

    /// Turns a stored record into a memory (`None` if it is not a memory).
    fn memory_of(record: &Record) -> ApiResult<Memory> {
        let doc = Doc::of(record)?;
        let p = &record.payload;
        Ok(Memory {
            id: record.id,
            namespace: p.namespace.clone(),
            agent_id: p.agent_id.clone(),
            user_id: p.user_id.clone(),
            session_id: p.session_id.clone(),
            kind: p.kind.as_deref().and_then(Kind::parse).unwrap_or_default(),
            text: doc.text,
            tags: p.tags.clone(),
            metadata: doc.metadata,
            visibility: doc.visibility,
            created_at: from_millis(p.created_at),
            updated_at: from_millis(p.updated_at),
            expires_at: p.expires_at.map(from_millis),
            version: record.version,
            content_hash: doc.content_hash,
            embedding_model: doc.embedding_model,
        })
    }

    /// The memory of a record read for a list, search or export, or `None`
    /// (logged and counted) when it cannot be decoded.
    fn readable(&self, record: &Record) -> Option<Memory> {
        self.skip_unreadable(record.id, Self::memory_of(record))
    }

    /// `decoded`, or `None` when record `id` could not be decoded, with an
    /// error log naming it and `memory_unreadable_records_total`: one bad
    /// record must not fail every request that touches it.
    fn skip_unreadable<T>(&self, id: Uuid, decoded: ApiResult<T>) -> Option<T> {
        match decoded {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(id = %id, error = %e, "skipping an unreadable record");
                self.metrics.unreadable_record();
                None
            }
        }
    }

    /// Whether the caller may see `record`, acting as `agent`.
    fn visible(record: &Record, agent: Option<&str>, now: i64) -> bool {
        let p = &record.payload;
        if !p.alive_at(now) {
            return false;
        }
        let want_shared = format!("{}*", attr::VISIBLE);
        p.attributes.iter().any(|a| {
            a == &want_shared || agent.is_some_and(|ag| a.strip_prefix(attr::VISIBLE) == Some(ag))
        })
    }

    /// The filter of what `agent` may see in `ns`, now.
    fn visible_filter(ns: &str, agent: Option<&str>, now: i64) -> Filter {
        let mut readers = vec![format!("{}*", attr::VISIBLE)];
        if let Some(a) = agent {
            readers.push(format!("{}{a}", attr::VISIBLE));
        }
        Filter::all()
            .eq(Field::Namespace, ns)
            .any_of(Field::Attribute, readers)
            .not_expired_at(now)
    }

    /// Adds the conditions of `f` to `filter`.
    fn apply_filter(&self, mut filter: Filter, f: &MemoryFilter) -> ApiResult<Filter> {
        let l = &self.limits;
        for (field, name, value) in [
            (Field::Agent, "filter.agent_id", &f.agent_id),
            (Field::User, "filter.user_id", &f.user_id),
            (Field::Session, "filter.session_id", &f.session_id),
        ] {
            if let Some(v) = value {
                validate::label(l, name, v)?;
                filter = filter.eq(field, v.as_str());
            }
        }
        if let Some(kind) = f.kind {
            filter = filter.eq(Field::Kind, kind.as_str());
        }
        validate::tags(l, "filter.tags_any", &f.tags_any)?;
        validate::tags(l, "filter.tags_all", &f.tags_all)?;
        if !f.tags_any.is_empty() {
            filter = filter.any_of(Field::Tag, f.tags_any.iter().cloned());
        }
        filter = filter.all_tags(f.tags_all.iter().cloned());
        for (field, after, before) in [
            (TimeField::Created, f.created_after, f.created_before),
            (TimeField::Updated, f.updated_after, f.updated_before),
        ] {
            if after.is_some() || before.is_some() {
                filter = filter.range(field, after.map(millis), before.map(millis));
            }
        }
        for (k, v) in &f.metadata {
            let a = meta_attr(k, v).ok_or_else(|| {
                ApiError::invalid(
                    "filter.metadata",
                    format!("metadata filter `{k}` must be a string, number, boolean or null"),
                )
            })?;
            filter = filter.eq(Field::Attribute, a);
        }
        Ok(filter)
    }

    /// The contextual text of a new memory created at `created_at`.
    fn contextual(&self, who: &Principal, m: &NewMemory, created_at: OffsetDateTime) -> String {
        let agent = who.acting_agent(m.agent_id.as_deref());
        let tags = distinct_tags(&m.tags);
        self.search.of(&m.namespace).template.render(&Fields {
            text: &m.text,
            namespace: &m.namespace,
            agent_id: agent.as_deref(),
            user_id: m.user_id.as_deref(),
            session_id: m.session_id.as_deref(),
            kind: m.kind.as_str(),
            tags: &tags,
            metadata: &m.metadata,
            created_at,
        })
    }

    /// The contextual text of a stored memory.
    fn contextual_of(&self, payload: &Payload, doc: &Doc) -> String {
        self.search.of(&payload.namespace).template.render(&Fields {
            text: &doc.text,
            namespace: &payload.namespace,
            agent_id: payload.agent_id.as_deref(),
            user_id: payload.user_id.as_deref(),
            session_id: payload.session_id.as_deref(),
            kind: payload.kind.as_deref().unwrap_or(""),
            tags: &payload.tags,
            metadata: &doc.metadata,
            created_at: from_millis(payload.created_at),
        })
    }

    /// Validates one create and computes everything but the vector.
    fn prepare(
        &self,
        who: &Principal,
        input: NewMemory,
        embedded: Embedded,
        id: Uuid,
        (created_at, updated_at): (i64, i64),
    ) -> ApiResult<Prepared> {
        let content_hash = hex(&Sha256::digest(input.text.as_bytes()));
        let mut payload = Payload {
            namespace: input.namespace,
            agent_id: who.acting_agent(input.agent_id.as_deref()),
            user_id: input.user_id,
            session_id: input.session_id,
            kind: Some(input.kind.as_str().to_owned()),
            tags: distinct_tags(&input.tags),
            created_at,
            updated_at,
            expires_at: input.expires_at.map(millis),
            attributes: Vec::new(),
            text: embedded.text,
        };
        let doc = Doc {
            text: input.text,
            metadata: input.metadata,
            visibility: input.visibility,
            content_hash,
            embedding_model: self.embedder.model_id().to_owned(),
            idempotency_key: input.idempotency_key,
            history: Vec::new(),
            client_vector: embedded.client,
        };
        let (dup, idem) = scope_keys(&payload, &doc);
        payload.attributes = attributes(&payload, &doc, (dup.clone(), idem.clone()));
        Ok(Prepared {
            id,
            vector: embedded.vector,
            payload,
            doc,
            dup,
            idem,
        })
    }

    fn check_new(&self, who: &Principal, m: &NewMemory, now: OffsetDateTime) -> ApiResult<()> {
        let l = &self.limits;
        validate::namespace(l, &m.namespace)?;
        who.require(&m.namespace, Role::Write)?;
        validate::text(l, "text", &m.text)?;
        validate::agent(l, "agent_id", m.agent_id.as_deref())?;
        validate::opt_label(l, "user_id", m.user_id.as_deref())?;
        validate::opt_label(l, "session_id", m.session_id.as_deref())?;
        validate::tags(l, "tags", &m.tags)?;
        validate::metadata(l, &m.metadata)?;
        validate::expiry(m.expires_at, now)?;
        if let Some(k) = &m.idempotency_key {
            validate::label(l, "idempotency_key", k)?;
        }
        if let Some(v) = &m.vector {
            validate::vector(self.embedder.dims(), v)?;
        }
        if m.visibility == Visibility::Private && who.acting_agent(m.agent_id.as_deref()).is_none()
        {
            return Err(ApiError::invalid(
                "visibility",
                "a private memory needs an author: give agent_id (or use an agent-bound key)",
            ));
        }
        Ok(())
    }

    /// The live memory carrying attribute `a` in `ns` that `agent` may see, if any.
    ///
    /// Replays and duplicates return what this finds, so it answers only what
    /// a `GET` by the same caller would: the scope keys already separate
    /// authors, and the visibility check makes that hold whatever the keys.
    async fn find_by_attr(
        &self,
        ns: &str,
        a: &str,
        agent: Option<&str>,
        now: i64,
    ) -> ApiResult<Option<Record>> {
        let filter = Self::visible_filter(ns, agent, now).eq(Field::Attribute, a);
        let mut ids = self.collection.index().ids_matching(&filter);
        ids.sort();
        for id in ids {
            if let Some(r) = self.timed("get", self.collection.get(id)).await?
                && r.payload.namespace == ns
                && Self::visible(&r, agent, now)
            {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Binds each namespace to this server's model (409 if bound to another).
    async fn bind_models<'a>(&self, namespaces: impl Iterator<Item = &'a str>) -> ApiResult<()> {
        let distinct: HashSet<&str> = namespaces.collect();
        // All are checked before any is bound, so a refused batch binds nothing.
        for ns in &distinct {
            self.models.check(ns).await?;
        }
        for ns in distinct {
            self.models.bind(ns).await?;
        }
        Ok(())
    }

    /// Creates memories in order; identical text in the same scope and reused
    /// idempotency keys return the existing memory instead of a new one.
    /// Nothing is written unless every input is valid.
    pub async fn create(&self, who: &Principal, inputs: Vec<NewMemory>) -> ApiResult<Vec<Created>> {
        if inputs.is_empty() {
            return Err(ApiError::invalid("memories", "no memories given"));
        }
        if inputs.len() > self.limits.max_batch {
            return Err(ApiError::invalid(
                "memories",
                format!(
                    "{} memories in one batch; the limit is {}",
                    inputs.len(),
                    self.limits.max_batch
                ),
            ));
        }
        let now = OffsetDateTime::now_utc();
        for (i, m) in inputs.iter().enumerate() {
            self.check_new(who, m, now).map_err(|e| {
                if inputs.len() > 1 {
                    located(e, format!("memories[{i}]"), "index", i)
                } else {
                    e
                }
            })?;
        }
        self.bind_models(inputs.iter().map(|m| m.namespace.as_str()))
            .await?;
        let contexts: Vec<String> = inputs
            .iter()
            .map(|m| self.contextual(who, m, now))
            .collect();
        let to_embed: Vec<String> = inputs
            .iter()
            .zip(&contexts)
            .filter(|(m, _)| m.vector.is_none())
            .map(|(_, text)| text.clone())
            .collect();
        let mut embedded = self.embed(to_embed, Purpose::Document).await?.into_iter();
        let mut prepared = Vec::with_capacity(inputs.len());
        for (mut m, text) in inputs.into_iter().zip(contexts) {
            let client = m.vector.is_some();
            let vector = match m.vector.take() {
                Some(v) => v,
                None => embedded.next().ok_or_else(|| {
                    ApiError::Internal("embedder returned too few vectors".into())
                })?,
            };
            let now_ms = millis(now);
            let e = Embedded {
                vector,
                text,
                client,
            };
            prepared.push(self.prepare(who, m, e, Uuid::now_v7(), (now_ms, now_ms))?);
        }

        // Creates sharing a duplicate or idempotency key are serialised here.
        let mut locks: Vec<usize> = prepared
            .iter()
            .flat_map(|p| std::iter::once(&p.dup).chain(p.idem.as_ref()))
            .map(|k| self.lock_index(k))
            .collect();
        locks.sort_unstable();
        locks.dedup();
        let mut _guards = Vec::with_capacity(locks.len());
        for i in locks {
            if let Some(l) = self.create_locks.get(i) {
                _guards.push(l.lock().await);
            }
        }

        let now_ms = millis(now);
        let mut outcomes: Vec<Option<Created>> = Vec::with_capacity(prepared.len());
        let mut writes: Vec<NewPoint> = Vec::new();
        let mut written: Vec<(usize, Memory)> = Vec::new();
        // Within the batch, a repeat of an earlier entry returns that entry.
        let mut batch_keys: Vec<(String, usize)> = Vec::new();
        for (i, p) in prepared.into_iter().enumerate() {
            let ns = p.payload.namespace.clone();
            let author = p.payload.agent_id.clone();
            if let Some(idem) = &p.idem
                && let Some(r) = self
                    .find_by_attr(&ns, idem, author.as_deref(), now_ms)
                    .await?
            {
                outcomes.push(Some(Created {
                    memory: Self::memory_of(&r)?,
                    duplicate: false,
                    replayed: true,
                }));
                continue;
            }
            if let Some(r) = self
                .find_by_attr(&ns, &p.dup, author.as_deref(), now_ms)
                .await?
            {
                outcomes.push(Some(Created {
                    memory: Self::memory_of(&r)?,
                    duplicate: true,
                    replayed: false,
                }));
                continue;
            }
            let earlier = batch_keys
                .iter()
                .find(|(k, _)| *k == p.dup || Some(k) == p.idem.as_ref())
                .map(|(_, j)| *j);
            if let Some(j) = earlier {
                outcomes.push(None);
                written.push((
                    i,
                    Memory {
                        version: 0,
                        ..written_memory(&written, j)?
                    },
                ));
                continue;
            }
            batch_keys.push((p.dup.clone(), i));
            if let Some(k) = &p.idem {
                batch_keys.push((k.clone(), i));
            }
            let document = serde_json::to_vec(&p.doc)
                .map_err(|e| ApiError::Internal(format!("encoding a memory: {e}")))?;
            let record = Record {
                id: p.id,
                version: 0,
                vector: Vec::new(),
                payload: p.payload.clone(),
                document: document.clone(),
            };
            written.push((i, Self::memory_of(&record)?));
            writes.push(NewPoint::new(p.id, p.vector, p.payload).with_document(document));
            outcomes.push(None);
        }
        let versions = if writes.len() == 1 {
            let w = writes.remove(0);
            vec![
                self.timed(
                    "put",
                    self.collection.upsert_document(
                        w.id,
                        &w.vector,
                        w.payload,
                        &w.document,
                        Expect::Absent,
                    ),
                )
                .await?,
            ]
        } else {
            self.timed("put_many", self.collection.upsert_many(writes))
                .await?
        };
        // Attach versions to the new memories, then resolve in-batch repeats.
        let mut versions = versions.into_iter();
        let mut by_index: Vec<(usize, Memory, bool)> = Vec::new();
        let mut first_of: std::collections::HashMap<Uuid, u64> = std::collections::HashMap::new();
        for (i, mut m) in written {
            if m.version == 0 && first_of.contains_key(&m.id) {
                m.version = first_of[&m.id];
                by_index.push((i, m, true));
            } else {
                m.version = versions
                    .next()
                    .ok_or_else(|| ApiError::Internal("store returned too few versions".into()))?;
                first_of.insert(m.id, m.version);
                by_index.push((i, m, false));
            }
        }
        for (i, memory, duplicate) in by_index {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = Some(Created {
                    memory,
                    duplicate,
                    replayed: false,
                });
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| ApiError::Internal("a create had no outcome".into())))
            .collect()
    }

    /// Loads a memory the caller may see (acting as `agent`), or 404.
    async fn load_visible(
        &self,
        who: &Principal,
        id: Uuid,
        agent: Option<&str>,
        role: Role,
    ) -> ApiResult<Record> {
        let not_found = || ApiError::NotFound(format!("memory {id} not found"));
        let record = self
            .timed("get", self.collection.get(id))
            .await?
            .ok_or_else(not_found)?;
        // What the caller cannot see is "not found", never "forbidden", whatever
        // the operation: another tenant's memory, another agent's private one.
        // Only then does the role count, so a 403 never confirms an id.
        if who.require(&record.payload.namespace, Role::Read).is_err() {
            return Err(not_found());
        }
        let agent = who.acting_agent(agent);
        if !Self::visible(&record, agent.as_deref(), millis(OffsetDateTime::now_utc())) {
            return Err(not_found());
        }
        who.require(&record.payload.namespace, role)?;
        Ok(record)
    }

    /// One memory.
    pub async fn get(&self, who: &Principal, id: Uuid, agent: Option<&str>) -> ApiResult<Memory> {
        let record = self.load_visible(who, id, agent, Role::Read).await?;
        Self::memory_of(&record)
    }

    /// The memory's states, newest first.
    pub async fn history(
        &self,
        who: &Principal,
        id: Uuid,
        agent: Option<&str>,
    ) -> ApiResult<History> {
        let record = self.load_visible(who, id, agent, Role::Read).await?;
        let mut revisions = vec![revision(Self::memory_of(&record)?)];
        // A shared memory may have been a private draft: its earlier states
        // are shown only to its author, as they were when current.
        let author = record.payload.agent_id.as_deref();
        let is_author = author.is_some() && who.acting_agent(agent).as_deref() == author;
        revisions.extend(
            Doc::of(&record)?
                .history
                .into_iter()
                .filter(|r| r.visibility == Visibility::Shared || is_author),
        );
        Ok(History { id, revisions })
    }

    /// Applies `patch`; `if_match` (or `patch.version`) must name the stored version when given.
    pub async fn update(
        &self,
        who: &Principal,
        id: Uuid,
        patch: MemoryPatch,
        if_match: Option<u64>,
        agent: Option<&str>,
    ) -> ApiResult<Memory> {
        let l = &self.limits;
        if let Some(t) = &patch.text {
            validate::text(l, "text", t)?;
        }
        if let Some(t) = &patch.tags {
            validate::tags(l, "tags", t)?;
        }
        if let Some(m) = &patch.metadata {
            validate::metadata(l, m)?;
        }
        let now = OffsetDateTime::now_utc();
        validate::expiry(patch.expires_at, now)?;
        if patch.clear_expiry && patch.expires_at.is_some() {
            return Err(ApiError::invalid(
                "clear_expiry",
                "give either expires_at or clear_expiry, not both",
            ));
        }
        let expected = match (if_match, patch.version) {
            (Some(a), Some(b)) if a != b => {
                return Err(ApiError::bad_request(
                    "If-Match and version name different versions",
                ));
            }
            (a, b) => a.or(b),
        };
        // The last embedding made, kept across retries: (text, vector).
        let mut embedded: Option<(String, Vec<f32>)> = None;
        for _ in 0..PATCH_RETRIES {
            let record = self.load_visible(who, id, agent, Role::Write).await?;
            if let Some(v) = expected
                && v != record.version
            {
                return Err(ApiError::PreconditionFailed {
                    message: format!(
                        "memory {id} is at version {}, not {v}; reload it and retry",
                        record.version
                    ),
                    current_version: Some(record.version),
                });
            }
            if patch.changes_nothing() {
                // No new version and no history entry (history keeps only
                // `max_history` states; an empty PATCH must not push real ones out).
                return Self::memory_of(&record);
            }
            let mut doc = Doc::of(&record)?;
            let embedded_from = doc.embedded_from(&record.payload).to_owned();
            let mut payload = record.payload.clone();
            doc.history.insert(0, revision(Self::memory_of(&record)?));
            doc.history.truncate(l.max_history);
            if let Some(t) = &patch.text {
                doc.text.clone_from(t);
                doc.content_hash = hex(&Sha256::digest(t.as_bytes()));
                doc.embedding_model = self.embedder.model_id().to_owned();
                doc.client_vector = false;
            }
            if let Some(m) = &patch.metadata {
                doc.metadata.clone_from(m);
            }
            if let Some(v) = patch.visibility {
                if v == Visibility::Private && payload.agent_id.is_none() {
                    return Err(ApiError::invalid(
                        "visibility",
                        "this memory has no author agent, so it cannot be private",
                    ));
                }
                doc.visibility = v;
            }
            if let Some(t) = &patch.tags {
                payload.tags = distinct_tags(t);
            }
            if let Some(k) = patch.kind {
                payload.kind = Some(k.as_str().to_owned());
            }
            if patch.clear_expiry {
                payload.expires_at = None;
            } else if let Some(e) = patch.expires_at {
                payload.expires_at = Some(millis(e));
            }
            payload.updated_at = millis(now).max(payload.created_at);
            payload.attributes = attributes(&payload, &doc, scope_keys(&payload, &doc));
            payload.text = self.contextual_of(&payload, &doc);
            let v = if doc.client_vector || payload.text == embedded_from {
                record.vector.clone()
            } else {
                match &embedded {
                    Some((text, v)) if *text == payload.text => v.clone(),
                    _ => {
                        let v = self
                            .embed(vec![payload.text.clone()], Purpose::Document)
                            .await?
                            .remove(0);
                        embedded = Some((payload.text.clone(), v.clone()));
                        v
                    }
                }
            };
            let document = serde_json::to_vec(&doc)
                .map_err(|e| ApiError::Internal(format!("encoding a memory: {e}")))?;
            let write = self.collection.upsert_document(
                id,
                &v,
                payload.clone(),
                &document,
                Expect::Version(record.version),
            );
            match self.timed("put", write).await {
                Ok(version) => {
                    return Self::memory_of(&Record {
                        id,
                        version,
                        vector: Vec::new(),
                        payload,
                        document,
                    });
                }
                // Someone else wrote in between: with If-Match that is the caller's
                // conflict; without, re-read and apply the patch to the new state.
                Err(IndexError::VersionConflict { found, .. }) if expected.is_some() => {
                    return Err(ApiError::PreconditionFailed {
                        message: format!("memory {id} changed while updating; reload it and retry"),
                        current_version: found,
                    });
                }
                Err(IndexError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Conflict(format!(
            "memory {id} is being updated concurrently; retry"
        )))
    }

    /// Deletes a memory; `if_match` must name the stored version when given.
    pub async fn delete(
        &self,
        who: &Principal,
        id: Uuid,
        if_match: Option<u64>,
        agent: Option<&str>,
    ) -> ApiResult<()> {
        let record = self.load_visible(who, id, agent, Role::Write).await?;
        let expect = Expect::Version(if_match.unwrap_or(record.version));
        match self
            .timed("delete", self.collection.delete(id, expect))
            .await
        {
            Ok(_) => Ok(()),
            Err(IndexError::VersionConflict { found: None, .. }) => {
                Err(ApiError::NotFound(format!("memory {id} not found")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The namespaces `who` may read, each with the memories `who` (as
    /// `agent`) can see there; a namespace where it sees none is left out, so
    /// another agent's private memories do not reveal that a namespace exists.
    pub fn namespaces(&self, who: &Principal, agent: Option<&str>) -> NamespaceList {
        let agent = who.acting_agent(agent);
        let now = millis(OffsetDateTime::now_utc());
        let index = self.collection.index();
        let namespaces = index
            .values(Field::Namespace)
            .into_iter()
            .filter(|ns| who.covers(ns))
            .filter_map(|namespace| {
                let visible = Self::visible_filter(&namespace, agent.as_deref(), now);
                let memories = index.count_matching(&visible);
                (memories > 0).then_some(NamespaceSummary {
                    namespace,
                    memories,
                })
            })
            .collect();
        NamespaceList { namespaces }
    }

    /// Memories of `ns` matching `filter`, newest first, `limit` at a time.
    pub async fn list(
        &self,
        who: &Principal,
        ns: &str,
        filter: &MemoryFilter,
        agent: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> ApiResult<MemoryPage> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Read)?;
        self.models.check(ns).await?;
        let limit = validate::top_k(&self.limits, "limit", limit)?;
        let after = cursor.map(decode_cursor).transpose()?;
        let agent = who.acting_agent(agent);
        let now = millis(OffsetDateTime::now_utc());
        let f = self.apply_filter(Self::visible_filter(ns, agent.as_deref(), now), filter)?;
        let mut ids = self.collection.index().ids_matching(&f);
        // UUIDv7 ids sort by creation time: newest first is descending id order.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(after) = after {
            ids.retain(|id| *id < after);
        }
        let more = ids.len() > limit;
        ids.truncate(limit);
        let records = self
            .timed("get_many", self.collection.store().get_many(&ids))
            .await?;
        let mut memories = Vec::with_capacity(ids.len());
        for r in records.iter().flatten() {
            // A memory changed since the index answered is re-checked here.
            if Self::visible(r, agent.as_deref(), now) && r.payload.namespace == ns {
                memories.extend(self.readable(r));
            }
        }
        let next_cursor = if more {
            ids.last().map(|id| encode_cursor(*id))
        } else {
            None
        };
        Ok(MemoryPage {
            memories,
            next_cursor,
        })
    }

    /// Deletes (or, on a dry run, counts) the visible memories matching a filter.
    pub async fn bulk_delete(&self, who: &Principal, req: BulkDelete) -> ApiResult<BulkDeleted> {
        validate::namespace(&self.limits, &req.namespace)?;
        who.require(&req.namespace, Role::Admin)?;
        self.models.check(&req.namespace).await?;
        let agent = who.acting_agent(req.as_agent.as_deref());
        let now = millis(OffsetDateTime::now_utc());
        let f = self.apply_filter(
            Self::visible_filter(&req.namespace, agent.as_deref(), now),
            &req.filter,
        )?;
        let ids = self.collection.index().ids_matching(&f);
        let matched = ids.len() as u64;
        let mut deleted = 0;
        if !req.dry_run {
            for id in ids {
                if self
                    .timed("delete", self.collection.delete(id, Expect::Any))
                    .await?
                    .is_some()
                {
                    deleted += 1;
                }
            }
        }
        Ok(BulkDeleted {
            matched,
            deleted,
            dry_run: req.dry_run,
        })
    }
    /// Ids of the memories of `ns` the caller may export, oldest first.
    pub async fn export_ids(
        &self,
        who: &Principal,
        ns: &str,
        agent: Option<&str>,
    ) -> ApiResult<Vec<Uuid>> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Read)?;
        self.models.check(ns).await?;
        let agent = who.acting_agent(agent);
        let now = millis(OffsetDateTime::now_utc());
        let mut ids =
            self.collection
                .index()
                .ids_matching(&Self::visible_filter(ns, agent.as_deref(), now));
        ids.sort_unstable();
        Ok(ids)
    }

    /// The exportable form of `ids` (skipping any deleted since they were
    /// listed), and how many were left out as unreadable.
    pub async fn export_page(
        &self,
        who: &Principal,
        ids: &[Uuid],
        agent: Option<&str>,
        include_vectors: bool,
    ) -> ApiResult<(Vec<PortableMemory>, u64)> {
        let agent = who.acting_agent(agent);
        let now = millis(OffsetDateTime::now_utc());
        let records = self
            .timed("get_many", self.collection.store().get_many(ids))
            .await?;
        let mut out = Vec::with_capacity(records.len());
        let mut unreadable = 0;
        for r in records.into_iter().flatten() {
            if !Self::visible(&r, agent.as_deref(), now)
                || who.require(&r.payload.namespace, Role::Read).is_err()
            {
                continue;
            }
            let Some(m) = self.readable(&r) else {
                unreadable += 1;
                continue;
            };
            let mut p = PortableMemory::from(m);
            if include_vectors {
                p.vector = Some(r.vector);
            }
            out.push(p);
        }
        Ok((out, unreadable))
    }

    /// Writes imported memories (ids and times kept, same id replaced). Every
    /// line is checked before anything is written; errors name the line (1-based).
    pub async fn import(
        &self,
        who: &Principal,
        lines: Vec<(usize, PortableMemory)>,
    ) -> ApiResult<Imported> {
        let now = OffsetDateTime::now_utc();
        let at_line = |line: usize, e: ApiError| located(e, format!("line {line}"), "line", line);
        let mut checked = Vec::with_capacity(lines.len());
        // Lines that name an id, which may already be taken: (line, id).
        let mut given = Vec::new();
        for (line, p) in lines {
            let created = p.created_at.unwrap_or(now);
            let updated = p.updated_at.unwrap_or(created);
            if updated < created {
                return Err(at_line(
                    line,
                    ApiError::invalid("updated_at", "updated_at is before created_at"),
                ));
            }
            if let Some(id) = p.id {
                given.push((line, id, checked.len()));
            }
            let id = p.id.unwrap_or_else(Uuid::now_v7);
            let input = NewMemory {
                namespace: p.namespace,
                text: p.text,
                agent_id: p.agent_id,
                user_id: p.user_id,
                session_id: p.session_id,
                kind: p.kind,
                tags: p.tags,
                metadata: p.metadata,
                visibility: p.visibility,
                expires_at: p.expires_at,
                vector: p.vector,
                idempotency_key: None,
            };
            self.check_new(who, &input, now)
                .map_err(|e| at_line(line, e))?;
            checked.push((id, (millis(created), millis(updated)), input));
        }
        // Ids are global: a line may replace only a memory the caller could
        // itself update, in the same namespace. Another tenant's memory,
        // another agent's private one or a session record is refused, and
        // nothing is written.
        let ids: Vec<Uuid> = given.iter().map(|(_, id, _)| *id).collect();
        let existing = self
            .timed("get_many", self.collection.store().get_many(&ids))
            .await?;
        let now_ms = millis(now);
        for ((line, id, at), record) in given.into_iter().zip(existing) {
            let (Some(record), Some((_, _, input))) = (record, checked.get(at)) else {
                continue;
            };
            let agent = who.acting_agent(input.agent_id.as_deref());
            let replaceable = record.payload.namespace == input.namespace
                && Self::visible(&record, agent.as_deref(), now_ms);
            if !replaceable {
                return Err(ApiError::Conflict(format!(
                    "line {line}: id {id} is taken by a record this key cannot replace; \
                     leave `id` out to import the line as a new memory"
                )));
            }
        }
        self.bind_models(checked.iter().map(|(_, _, m)| m.namespace.as_str()))
            .await?;
        let mut imported = 0u64;
        for chunk in checked.chunks(self.limits.max_batch.max(1)) {
            let contexts: Vec<String> = chunk
                .iter()
                .map(|(_, (created, _), m)| self.contextual(who, m, from_millis(*created)))
                .collect();
            let texts: Vec<String> = chunk
                .iter()
                .zip(&contexts)
                .filter(|((_, _, m), _)| m.vector.is_none())
                .map(|(_, text)| text.clone())
                .collect();
            let mut embedded = self.embed(texts, Purpose::Document).await?.into_iter();
            let mut writes = Vec::with_capacity(chunk.len());
            for ((id, times, input), text) in chunk.iter().cloned().zip(contexts) {
                let client = input.vector.is_some();
                let vector = match &input.vector {
                    Some(v) => v.clone(),
                    None => embedded.next().ok_or_else(|| {
                        ApiError::Internal("embedder returned too few vectors".into())
                    })?,
                };
                let e = Embedded {
                    vector,
                    text,
                    client,
                };
                let p = self.prepare(who, input, e, id, times)?;
                let document = serde_json::to_vec(&p.doc)
                    .map_err(|e| ApiError::Internal(format!("encoding a memory: {e}")))?;
                writes.push(NewPoint::new(p.id, p.vector, p.payload).with_document(document));
            }
            imported += writes.len() as u64;
            self.timed("put_many", self.collection.upsert_many(writes))
                .await?;
        }
        Ok(Imported { imported })
    }
}

/// The memory written earlier in the same batch at input index `j`.
fn written_memory(written: &[(usize, Memory)], j: usize) -> ApiResult<Memory> {
    written
        .iter()
        .find(|(i, _)| *i == j)
        .map(|(_, m)| m.clone())
        .ok_or_else(|| ApiError::Internal("batch repeat refers to nothing".into()))
}

const CURSOR_PREFIX: &str = "m1.";

fn encode_cursor(id: Uuid) -> String {
    use base64::Engine;
    format!(
        "{CURSOR_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
    )
}

fn decode_cursor(s: &str) -> ApiResult<Uuid> {
    use base64::Engine;
    let bad = || {
        ApiError::invalid(
            "cursor",
            "cursor is not one this server issued; start without it",
        )
    };
    let body = s.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| bad())?;
    Uuid::from_slice(&bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_400() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        for bad in [
            "",
            "m1.",
            "m1.!!!",
            "x",
            "m1.AAAA",
            "m2.AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(ApiError::BadRequest { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn metadata_attributes_distinguish_types() {
        assert_ne!(
            meta_attr("k", &Value::from(1)),
            meta_attr("k", &Value::from("1"))
        );
        assert!(meta_attr("k", &serde_json::json!([1])).is_none());
    }
}
