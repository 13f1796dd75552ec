//! Sessions (working memory) as records of the same collection.
//!
//! A session is one record whose id is derived from `(namespace, session_id)`,
//! so a lookup is one read and two instances agree on it without coordination.
//! Its payload carries the `session` attribute and no visibility attribute, so
//! no memory query ever matches it; it replicates, expires (TTL) and snapshots
//! like any memory. Appends are optimistic read-modify-writes on the record's
//! version, retried on a race: atomic, and never losing a message.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::store::{Expect, Record};
use vector_index::{Field, Filter, IndexError, Payload};

use super::{MemoryService, derived_id, from_millis, millis};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::model::{
    AppendMessages, Appended, Created, Kind, Message, NewMemory, NewMessage, Promote, PutSession,
    Session, SessionPage, SessionSummary,
};
use crate::validate;

/// The attribute that marks a session record.
pub(super) const SESSION: &str = "session";
/// Retries of an append that lost a race.
const APPEND_RETRIES: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionDoc {
    session_id: String,
    messages: Vec<Message>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    trimmed: u64,
    /// The first message (absolute index) not yet extracted: the start of
    /// the next extraction job. Moves only when a job completes.
    #[serde(default)]
    extract_from: u64,
    /// Changes when a `PUT` replaces the messages (their numbering restarts),
    /// so extraction jobs of the replaced messages are told apart.
    #[serde(default)]
    epoch: i64,
    /// Messages folded into `context` by summaries (counted in `trimmed` too).
    #[serde(default)]
    summarized: u64,
}

/// Where a session's next extraction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Extraction {
    /// The session's message numbering (see `SessionDoc::epoch`).
    pub(super) epoch: i64,
    /// The first message not yet extracted.
    pub(super) from: u64,
}

/// Whether `r` is a session still alive at `now`.
fn live_session(r: &Record, now: i64) -> bool {
    r.payload.attributes.iter().any(|a| a == SESSION) && r.payload.alive_at(now)
}

/// The record id of a session: stable for `(namespace, session_id)`.
fn record_id(ns: &str, session_id: &str) -> Uuid {
    derived_id(&[ns, "session", session_id])
}

impl MemoryService {
    /// Sessions are not searched by vector; every one gets the same unit vector.
    fn session_vector(&self) -> Vec<f32> {
        let mut v = vec![0.0; self.embedder.dims()];
        if let Some(first) = v.first_mut() {
            *first = 1.0;
        }
        v
    }

    fn check_messages(&self, messages: &[NewMessage]) -> ApiResult<()> {
        if messages.len() > self.limits.max_batch {
            return Err(ApiError::invalid(
                "messages",
                format!(
                    "{} messages in one call; the limit is {}",
                    messages.len(),
                    self.limits.max_batch
                ),
            ));
        }
        for m in messages {
            validate::label(&self.limits, "messages.role", &m.role)?;
            validate::text(&self.limits, "messages.content", &m.content)?;
            validate::agent(&self.limits, "messages.agent_id", m.agent_id.as_deref())?;
        }
        Ok(())
    }

    async fn check_scope(
        &self,
        who: &Principal,
        ns: &str,
        session_id: &str,
        role: Role,
    ) -> ApiResult<()> {
        validate::namespace(&self.limits, ns)?;
        validate::label(&self.limits, "session_id", session_id)?;
        who.require(ns, role)?;
        self.models.check(ns).await
    }

    fn window(&self, requested: Option<usize>) -> ApiResult<usize> {
        let w = requested.unwrap_or(self.limits.session_window);
        if w == 0 || w > self.limits.max_session_window {
            return Err(ApiError::invalid(
                "window",
                format!(
                    "window must be between 1 and {}",
                    self.limits.max_session_window
                ),
            ));
        }
        Ok(w)
    }

    fn ttl(ttl_secs: Option<u64>, now: OffsetDateTime) -> ApiResult<Option<i64>> {
        match ttl_secs {
            None => Ok(None),
            Some(0) => Err(ApiError::invalid("ttl_secs", "ttl_secs must be at least 1")),
            Some(s) => {
                let secs = i64::try_from(s).unwrap_or(i64::MAX / 2_000);
                Ok(Some(millis(now).saturating_add(secs.saturating_mul(1000))))
            }
        }
    }

    fn messages_of(
        who: &Principal,
        messages: Vec<NewMessage>,
        now: OffsetDateTime,
    ) -> Vec<Message> {
        messages
            .into_iter()
            .map(|m| Message {
                role: m.role,
                content: m.content,
                agent_id: who.acting_agent(m.agent_id.as_deref()),
                created_at: now,
            })
            .collect()
    }

    fn session_of(record: &Record) -> ApiResult<Session> {
        let doc: SessionDoc = serde_json::from_slice(&record.document)
            .map_err(|e| ApiError::Internal(format!("session {} is unreadable: {e}", record.id)))?;
        let p = &record.payload;
        Ok(Session {
            session_id: doc.session_id,
            namespace: p.namespace.clone(),
            user_id: p.user_id.clone(),
            messages: doc.messages,
            context: doc.context,
            data: doc.data,
            trimmed: doc.trimmed,
            summarized: doc.summarized,
            created_at: from_millis(p.created_at),
            updated_at: from_millis(p.updated_at),
            expires_at: p.expires_at.map(from_millis),
            version: record.version,
        })
    }

    /// The live session record, if any.
    async fn session_record(&self, ns: &str, session_id: &str) -> ApiResult<Option<Record>> {
        let id = record_id(ns, session_id);
        let now = millis(OffsetDateTime::now_utc());
        Ok(self
            .timed("get", self.collection.get(id))
            .await?
            .filter(|r| live_session(r, now)))
    }

    fn session_payload(
        ns: &str,
        session_id: &str,
        user_id: Option<String>,
        (created, updated): (i64, i64),
        expires_at: Option<i64>,
    ) -> Payload {
        Payload {
            namespace: ns.to_owned(),
            user_id,
            session_id: Some(session_id.to_owned()),
            kind: Some(SESSION.to_owned()),
            created_at: created,
            updated_at: updated,
            expires_at,
            attributes: vec![SESSION.to_owned()],
            ..Payload::default()
        }
    }

    async fn write_session(
        &self,
        id: Uuid,
        payload: Payload,
        doc: &SessionDoc,
        expect: Expect,
    ) -> Result<Record, IndexError> {
        let document = serde_json::to_vec(doc).map_err(|e| IndexError::Storage(e.to_string()))?;
        let vector = self.session_vector();
        let version = self
            .timed(
                "put",
                self.collection
                    .upsert_document(id, &vector, payload.clone(), &document, expect),
            )
            .await?;
        Ok(Record {
            id,
            version,
            vector: Vec::new(),
            payload,
            document,
        })
    }

    /// Creates or replaces a session.
    pub async fn put_session(
        &self,
        who: &Principal,
        session_id: &str,
        req: PutSession,
    ) -> ApiResult<Session> {
        self.check_scope(who, &req.namespace, session_id, Role::Write)
            .await?;
        validate::opt_label(&self.limits, "user_id", req.user_id.as_deref())?;
        self.check_messages(&req.messages)?;
        if let Some(c) = &req.context {
            validate::text(&self.limits, "context", c)?;
        }
        validate::json("data", &req.data)?;
        let now = OffsetDateTime::now_utc();
        let expires = Self::ttl(req.ttl_secs, now)?;
        let window = self.window(None)?;
        self.models.bind(&req.namespace).await?;
        let mut messages = Self::messages_of(who, req.messages, now);
        let trimmed = messages.len().saturating_sub(window);
        messages.drain(..trimmed);
        let id = record_id(&req.namespace, session_id);
        let created = match self.session_record(&req.namespace, session_id).await? {
            Some(r) => r.payload.created_at,
            None => millis(now),
        };
        let doc = SessionDoc {
            session_id: session_id.to_owned(),
            messages,
            context: req.context,
            data: req.data,
            trimmed: trimmed as u64,
            extract_from: trimmed as u64,
            epoch: millis(now),
            summarized: 0,
        };
        let payload = Self::session_payload(
            &req.namespace,
            session_id,
            req.user_id,
            (created, millis(now).max(created)),
            expires,
        );
        let record = self.write_session(id, payload, &doc, Expect::Any).await?;
        Self::session_of(&record)
    }

    /// One session.
    pub async fn get_session(
        &self,
        who: &Principal,
        ns: &str,
        session_id: &str,
    ) -> ApiResult<Session> {
        self.check_scope(who, ns, session_id, Role::Read).await?;
        let record = self.session_record(ns, session_id).await?.ok_or_else(|| {
            ApiError::NotFound(format!("session `{session_id}` not found in `{ns}`"))
        })?;
        Self::session_of(&record)
    }

    /// Deletes a session.
    pub async fn delete_session(
        &self,
        who: &Principal,
        ns: &str,
        session_id: &str,
    ) -> ApiResult<()> {
        self.check_scope(who, ns, session_id, Role::Write).await?;
        let record = self.session_record(ns, session_id).await?.ok_or_else(|| {
            ApiError::NotFound(format!("session `{session_id}` not found in `{ns}`"))
        })?;
        self.timed("delete", self.collection.delete(record.id, Expect::Any))
            .await?;
        Ok(())
    }

    /// Appends messages atomically (creating the session if needed), trimming to the window.
    pub async fn append_messages(
        &self,
        who: &Principal,
        session_id: &str,
        req: AppendMessages,
    ) -> ApiResult<Appended> {
        self.check_scope(who, &req.namespace, session_id, Role::Write)
            .await?;
        validate::opt_label(&self.limits, "user_id", req.user_id.as_deref())?;
        if req.messages.is_empty() {
            return Err(ApiError::invalid("messages", "no messages given"));
        }
        self.check_messages(&req.messages)?;
        let window = self.window(req.window)?;
        self.models.bind(&req.namespace).await?;
        let policy = self.policies.of(&req.namespace).await?.policy;
        // With summaries on, old messages leave only folded into the summary.
        let summarizing = self.summarizing(&policy).is_some();
        let id = record_id(&req.namespace, session_id);
        for _ in 0..APPEND_RETRIES {
            let now = OffsetDateTime::now_utc();
            // One read decides both the base state and the version the write
            // requires, so a session created or changed after it is a conflict.
            let stored = self.timed("get", self.collection.get(id)).await?;
            let expect = stored
                .as_ref()
                .map_or(Expect::Absent, |r| Expect::Version(r.version));
            let current = stored.filter(|r| live_session(r, millis(now)));
            let (mut doc, payload) = match &current {
                Some(r) => {
                    let doc: SessionDoc = serde_json::from_slice(&r.document).map_err(|e| {
                        ApiError::Internal(format!("session {session_id} is unreadable: {e}"))
                    })?;
                    let mut p = r.payload.clone();
                    p.updated_at = millis(now).max(p.created_at);
                    if let Some(t) = Self::ttl(req.ttl_secs, now)? {
                        p.expires_at = Some(t);
                    }
                    (doc, p)
                }
                // None, or expired but not yet swept: a new session replaces it.
                None => (
                    SessionDoc {
                        session_id: session_id.to_owned(),
                        messages: Vec::new(),
                        context: None,
                        data: Value::Null,
                        trimmed: 0,
                        extract_from: 0,
                        epoch: millis(now),
                        summarized: 0,
                    },
                    Self::session_payload(
                        &req.namespace,
                        session_id,
                        req.user_id.clone(),
                        (millis(now), millis(now)),
                        Self::ttl(req.ttl_secs, now)?,
                    ),
                ),
            };
            doc.messages
                .extend(Self::messages_of(who, req.messages.clone(), now));
            let over = if summarizing {
                let cap = self.limits.max_session_window;
                if doc.messages.len() > cap {
                    return Err(ApiError::Conflict(format!(
                        "session `{session_id}` would hold {} messages not yet summarised \
                         (at most {cap}): its summary job is behind; see GET /v1/jobs",
                        doc.messages.len()
                    )));
                }
                0
            } else {
                doc.messages.len().saturating_sub(window)
            };
            doc.messages.drain(..over);
            doc.trimmed += over as u64;
            match self.write_session(id, payload, &doc, expect).await {
                Ok(record) => {
                    let session = Self::session_of(&record)?;
                    let total = doc.trimmed + doc.messages.len() as u64;
                    let next = Extraction {
                        epoch: doc.epoch,
                        from: doc.extract_from,
                    };
                    self.after_append(&policy, &session, total, next).await;
                    return Ok(Appended {
                        session,
                        trimmed_now: over as u64,
                    });
                }
                Err(IndexError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Conflict(format!(
            "session `{session_id}` is being appended to concurrently; retry"
        )))
    }

    /// The live session `session_id` of `ns` and where its next extraction
    /// starts, for a job (no caller to check).
    pub(super) async fn session_for_job(
        &self,
        ns: &str,
        session_id: &str,
    ) -> ApiResult<Option<(Session, Extraction)>> {
        match self.session_record(ns, session_id).await? {
            Some(record) => Self::job_view(&record).map(Some),
            None => Ok(None),
        }
    }

    /// A session record as a job sees it: the session, and where its next
    /// extraction starts; `None` when `record` is not a live session.
    pub(super) fn job_view_of(record: &Record) -> ApiResult<Option<(Session, Extraction)>> {
        let now = millis(OffsetDateTime::now_utc());
        if !live_session(record, now) {
            return Ok(None);
        }
        Self::job_view(record).map(Some)
    }

    fn job_view(record: &Record) -> ApiResult<(Session, Extraction)> {
        let doc: SessionDoc = serde_json::from_slice(&record.document)
            .map_err(|e| ApiError::Internal(format!("session {} is unreadable: {e}", record.id)))?;
        let next = Extraction {
            epoch: doc.epoch,
            from: doc.extract_from,
        };
        Ok((Self::session_of(record)?, next))
    }

    /// Applies `change` to the live session's document in a write that
    /// requires the version read, retried on a race; `change` returns false
    /// to write nothing. Whether it wrote. Jobs' writes keep the payload, so
    /// `updated_at` keeps meaning "last append".
    async fn modify_session(
        &self,
        ns: &str,
        session_id: &str,
        mut change: impl FnMut(&mut SessionDoc) -> bool,
    ) -> ApiResult<bool> {
        for _ in 0..APPEND_RETRIES {
            let Some(record) = self.session_record(ns, session_id).await? else {
                return Ok(false); // deleted or expired meanwhile
            };
            let mut doc: SessionDoc = serde_json::from_slice(&record.document).map_err(|e| {
                ApiError::Internal(format!("session {session_id} is unreadable: {e}"))
            })?;
            if !change(&mut doc) {
                return Ok(false);
            }
            let expect = Expect::Version(record.version);
            match self
                .write_session(record.id, record.payload.clone(), &doc, expect)
                .await
            {
                Ok(_) => return Ok(true),
                Err(IndexError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Conflict(format!(
            "session `{session_id}` is being appended to concurrently; the job retries"
        )))
    }

    /// Folds the session's first `count` messages into `summary`, in one
    /// write with their removal, if they are still its first (the session's
    /// numbering `epoch`, starting at `from`). `false`: they are not.
    /// Appends racing the fold are kept: a lost race re-applies it to the
    /// new state.
    pub(super) async fn fold(
        &self,
        ns: &str,
        session_id: &str,
        (epoch, from, count): (i64, u64, usize),
        summary: &str,
    ) -> ApiResult<bool> {
        self.modify_session(ns, session_id, |doc| {
            if doc.epoch != epoch || doc.trimmed != from || doc.messages.len() < count {
                return false;
            }
            doc.messages.drain(..count);
            doc.trimmed += count as u64;
            doc.summarized += count as u64;
            doc.context = Some(summary.to_owned());
            true
        })
        .await
    }

    /// Records that messages before `to` are extracted (never moving back;
    /// nothing when a `PUT` replaced the messages since).
    pub(super) async fn advance_extraction(
        &self,
        ns: &str,
        session_id: &str,
        (epoch, to): (i64, u64),
    ) -> ApiResult<()> {
        self.modify_session(ns, session_id, |doc| {
            let moves = doc.epoch == epoch && doc.extract_from < to;
            if moves {
                doc.extract_from = to;
            }
            moves
        })
        .await
        .map(|_| ())
    }

    /// Sessions of `ns` (optionally of one user), most recently updated first.
    pub async fn list_sessions(
        &self,
        who: &Principal,
        ns: &str,
        user_id: Option<&str>,
        limit: usize,
    ) -> ApiResult<SessionPage> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Read)?;
        self.models.check(ns).await?;
        let limit = validate::top_k(&self.limits, "limit", limit)?;
        let now = millis(OffsetDateTime::now_utc());
        let mut filter = Filter::all()
            .eq(Field::Namespace, ns)
            .eq(Field::Attribute, SESSION)
            .not_expired_at(now);
        if let Some(u) = user_id {
            validate::label(&self.limits, "user_id", u)?;
            filter = filter.eq(Field::User, u);
        }
        let ids = self.collection.ids_matching(&filter);
        let records = self
            .timed("get_many", self.collection.get_many(&ids))
            .await?;
        let mut sessions = Vec::new();
        for r in records.into_iter().flatten() {
            if !live_session(&r, now) {
                continue;
            }
            let Some(s) = self.skip_unreadable(r.id, Self::session_of(&r)) else {
                continue;
            };
            sessions.push(SessionSummary {
                session_id: s.session_id,
                namespace: s.namespace,
                user_id: s.user_id,
                messages: s.messages.len(),
                updated_at: s.updated_at,
            });
        }
        sessions.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| a.session_id.cmp(&b.session_id))
        });
        sessions.truncate(limit);
        Ok(SessionPage { sessions })
    }

    /// Stores some (or all) of a session's messages as long-term memories.
    pub async fn promote(
        &self,
        who: &Principal,
        session_id: &str,
        req: Promote,
    ) -> ApiResult<Vec<Created>> {
        let session = self.get_session(who, &req.namespace, session_id).await?;
        who.require(&req.namespace, Role::Write)?;
        let chosen: Vec<&Message> = match &req.indexes {
            None => session.messages.iter().collect(),
            Some(ix) => ix
                .iter()
                .map(|i| {
                    session.messages.get(*i).ok_or_else(|| {
                        ApiError::invalid(
                            "indexes",
                            format!(
                                "message index {i} is outside the window of {} messages",
                                session.messages.len()
                            ),
                        )
                    })
                })
                .collect::<ApiResult<_>>()?,
        };
        if chosen.is_empty() {
            return Err(ApiError::invalid("indexes", "no messages to promote"));
        }
        let inputs = chosen
            .into_iter()
            .map(|m| NewMemory {
                namespace: req.namespace.clone(),
                text: m.content.clone(),
                agent_id: m.agent_id.clone(),
                user_id: session.user_id.clone(),
                session_id: Some(session.session_id.clone()),
                kind: req.kind.unwrap_or(Kind::Message),
                tags: req.tags.clone(),
                metadata: serde_json::Map::from_iter([(
                    "role".to_owned(),
                    Value::String(m.role.clone()),
                )]),
                ..NewMemory::default()
            })
            .collect();
        let created = self.create(who, inputs).await?;
        self.after_promote(&session).await;
        Ok(created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_stable_and_scoped_by_namespace() {
        assert_eq!(record_id("a", "s1"), record_id("a", "s1"));
        assert_ne!(record_id("a", "s1"), record_id("b", "s1"));
        assert_ne!(record_id("a", "s1"), record_id("a", "s2"));
        // "a" + "bs" must not collide with "ab" + "s".
        assert_ne!(record_id("a", "bs"), record_id("ab", "s"));
    }
}
