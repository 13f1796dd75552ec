//! Creating memories: validation, embedding, and the duplicate and
//! idempotency checks (serialised per scope key on this instance).

use std::cmp::Ordering;
use std::collections::HashSet;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::store::{Expect, NewPoint, Record};
use vector_index::{Field, Filter, Payload, Query};

use super::conversation::{Place, PreviousTurn, by_turn, turn_in, with_previous};
use super::record::{Doc, attributes, digest, distinct_tags, hex, scope_keys, visibility_attr};
use super::{MemoryService, from_millis, located, millis};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::model::{Created, Memory, NearDuplicate, NewMemory, Visibility};
use crate::validate;
use providers::embed::Purpose;

/// How far a given `created_at` may run ahead of this server's clock (the
/// caller's clock may be a little ahead).
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// Locks serialising creates that share a duplicate or idempotency key (or,
/// under a near-duplicate policy, a scope).
pub(super) const CREATE_LOCKS: usize = 256;

/// Nearest neighbours examined for a near-duplicate: the first in the scope
/// above the threshold wins, and the scope filter makes the first the usual one.
const NEAR_DUPLICATE_CANDIDATES: usize = 4;

/// A new memory's vector and the contextual text it was embedded from.
pub(super) struct Embedded {
    pub(super) vector: Vec<f32>,
    /// The rendered template: embedded (unless the caller gave the vector) and keyword-indexed.
    pub(super) text: String,
    /// The caller gave the vector.
    pub(super) client: bool,
}

/// Near-duplicate thresholds by namespace, for one create call, and whether
/// the namespace merges near-duplicates with a model (here configured).
struct Thresholds(Vec<(String, Option<f32>, bool)>);

impl Thresholds {
    /// `ns`'s threshold, if its policy sets one.
    fn of(&self, ns: &str) -> Option<f32> {
        self.0
            .iter()
            .find(|(n, ..)| n == ns)
            .and_then(|(_, t, _)| *t)
    }

    /// Whether `ns` merges near-duplicates instead of refusing them.
    fn merges(&self, ns: &str) -> bool {
        self.0.iter().any(|(n, _, m)| n == ns && *m)
    }
}

/// Where a new memory's turn before is.
enum Turn {
    /// Stored already.
    Stored(PreviousTurn),
    /// Another input of the same call, by index.
    InCall(usize),
}

/// A new memory's turn before, if any, and how many inputs of its call
/// come before it in its conversation (their vectors are made first).
#[derive(Default)]
struct Before {
    turn: Option<Turn>,
    depth: usize,
}

/// A validated create, ready to write.
pub(super) struct Prepared {
    pub(super) id: Uuid,
    pub(super) vector: Vec<f32>,
    pub(super) payload: Payload,
    pub(super) doc: Doc,
    pub(super) dup: String,
    pub(super) idem: Option<String>,
    /// Stored even if a near-duplicate exists.
    pub(super) allow_near: bool,
    /// Stored even if an identical memory exists.
    pub(super) allow_dup: bool,
}

impl MemoryService {
    /// Validates one create and computes everything but the vector.
    pub(super) fn prepare(
        &self,
        who: &Principal,
        input: NewMemory,
        embedded: Embedded,
        id: Uuid,
        (created_at, updated_at): (i64, i64),
    ) -> ApiResult<Prepared> {
        let content_hash = hex(&Sha256::digest(input.text.as_bytes()));
        let allow_near = input.allow_near_duplicate;
        let allow_dup = input.allow_duplicate;
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
            valid_from: input.valid_from.map(millis),
            valid_until: input.valid_until.map(millis),
            superseded_by: None,
            reason: None,
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
            allow_near,
            allow_dup,
        })
    }

    /// The near-duplicate threshold of each namespace `inputs` write to,
    /// read once per call.
    async fn near_thresholds(&self, inputs: &[NewMemory]) -> ApiResult<Thresholds> {
        let mut found: Vec<(String, Option<f32>, bool)> = Vec::new();
        for m in inputs {
            if !found.iter().any(|(ns, ..)| *ns == m.namespace) {
                let policy = self.policies.of(&m.namespace).await?.policy;
                let merges = policy
                    .merge_model
                    .as_ref()
                    .is_some_and(|m| self.chat_models.contains_key(m));
                found.push((m.namespace.clone(), policy.near_duplicate_threshold, merges));
            }
        }
        Ok(Thresholds(found))
    }

    /// The visibility attribute that is a new memory's near-duplicate scope
    /// (with its namespace and user): shared memories for a shared one, the
    /// author's private memories for a private one.
    fn near_scope(p: &Prepared) -> String {
        visibility_attr(p.doc.visibility, p.payload.agent_id.as_deref())
    }

    /// The live memory in `p`'s scope most similar to it, if at least
    /// `threshold` similar.
    async fn near_duplicate(
        &self,
        p: &Prepared,
        threshold: f32,
    ) -> ApiResult<Option<(Record, f32)>> {
        let scope = Self::near_scope(p);
        let mut filter = Filter::all()
            .eq(Field::Namespace, p.payload.namespace.as_str())
            .eq(Field::Attribute, scope.as_str());
        if let Some(u) = &p.payload.user_id {
            filter = filter.eq(Field::User, u.as_str());
        }
        let filter = Self::believed(filter, None);
        let found = self
            .collection
            .search(&Query::new(p.vector.clone(), NEAR_DUPLICATE_CANDIDATES).filter(filter))?;
        for hit in found.hits {
            if hit.score < threshold {
                break;
            }
            // The index filtered by scope; the record read is checked again
            // (and a memory with no user is only near one with no user).
            if let Some(r) = self.timed("get", self.collection.get(hit.id)).await?
                && r.payload.namespace == p.payload.namespace
                && r.payload.user_id == p.payload.user_id
                && r.payload.attributes.contains(&scope)
            {
                return Ok(Some((r, hit.score)));
            }
        }
        Ok(None)
    }

    pub(super) fn check_new(
        &self,
        who: &Principal,
        m: &NewMemory,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
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
        if let Some(at) = m.created_at
            && at > now + CLOCK_SKEW
        {
            return Err(ApiError::invalid(
                "created_at",
                "created_at is in the future; give when it was said or learned (RFC 3339, now or earlier), or leave it out for now",
            ));
        }
        if let Some(k) = &m.idempotency_key {
            validate::label(l, "idempotency_key", k)?;
        }
        if let Some(v) = &m.vector {
            validate::vector(self.embedder.dims(), v)?;
        }
        if let (Some(from), Some(until)) = (m.valid_from, m.valid_until)
            && until < from
        {
            return Err(ApiError::invalid(
                "valid_until",
                "valid_until is before valid_from; give the interval the fact holds in",
            ));
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
    pub(super) async fn find_by_attr(
        &self,
        ns: &str,
        a: &str,
        agent: Option<&str>,
    ) -> ApiResult<Option<Record>> {
        let filter = Self::visible_filter(ns, agent).eq(Field::Attribute, a);
        let mut ids = self.collection.ids_matching(&filter);
        ids.sort();
        for id in ids {
            if let Some(r) = self.timed("get", self.collection.get(id)).await?
                && r.payload.namespace == ns
                && Self::visible(&r, agent)
            {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Binds each namespace to this server's model (409 if bound to another).
    pub(super) async fn bind_models<'a>(
        &self,
        namespaces: impl Iterator<Item = &'a str>,
    ) -> ApiResult<()> {
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

    /// Embeds the inputs that bring no vector of their own (one batched call;
    /// the contextual text is rendered at each input's creation time, as the
    /// stored millisecond, so a later re-render gives the same text) and
    /// prepares every input for writing, in order. Used by create and import.
    ///
    /// Where a namespace's template asks for the turn before, an input's turn
    /// before is the latest of the stored turns and the other inputs of this
    /// call in its conversation, so a batch of turns chains as the same
    /// turns written one at a time, in turn order, would.
    pub(super) async fn embed_and_prepare(
        &self,
        who: &Principal,
        items: Vec<(Uuid, (i64, i64), NewMemory)>,
    ) -> ApiResult<Vec<Prepared>> {
        let before = self.turns_before(who, &items).await?;
        let (contexts, own_texts): (Vec<String>, Vec<String>) = items
            .iter()
            .zip(&before)
            .map(|((_, (created, _), m), b)| {
                let previous_text = match &b.turn {
                    Some(Turn::Stored(p)) => Some(p.text.as_str()),
                    Some(Turn::InCall(j)) => items.get(*j).map(|(_, _, m)| m.text.as_str()),
                    None => None,
                };
                let at = from_millis(*created);
                let own = self.contextual(who, m, at, None);
                let context = match previous_text {
                    Some(t) => self.contextual(who, m, at, Some(t)),
                    None => own.clone(),
                };
                (context, own)
            })
            .unzip();
        let to_embed: Vec<String> = items
            .iter()
            .zip(own_texts)
            .filter(|((_, _, m), _)| m.vector.is_none())
            .map(|(_, text)| text)
            .collect();
        let mut embedded = self.embed(to_embed, Purpose::Document).await?.into_iter();
        let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(items.len());
        for (_, _, m) in &items {
            vectors.push(match &m.vector {
                Some(v) => v.clone(),
                None => embedded.next().ok_or_else(|| {
                    ApiError::Internal("embedder returned too few vectors".into())
                })?,
            });
        }
        // A turn takes its turn before's finished vector, so turns before go
        // first; a vector the caller gave is kept as it is.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|i| before.get(*i).map(|b| b.depth));
        for i in order {
            if items.get(i).is_none_or(|(_, _, m)| m.vector.is_some()) {
                continue;
            }
            let previous = match before.get(i).and_then(|b| b.turn.as_ref()) {
                Some(Turn::Stored(p)) => Some(p.vector.clone()),
                Some(Turn::InCall(j)) => vectors.get(*j).cloned(),
                None => None,
            };
            if let (Some(previous), Some(own)) = (previous, vectors.get_mut(i)) {
                *own = with_previous(std::mem::take(own), &previous);
            }
        }
        let mut prepared = Vec::with_capacity(items.len());
        for (((id, times, mut m), text), vector) in items.into_iter().zip(contexts).zip(vectors) {
            let client = m.vector.take().is_some();
            let e = Embedded {
                vector,
                text,
                client,
            };
            prepared.push(self.prepare(who, m, e, id, times)?);
        }
        Ok(prepared)
    }

    /// The turn before each input whose namespace's template asks for it:
    /// the latest of the stored ones and of the other inputs of the call.
    async fn turns_before(
        &self,
        who: &Principal,
        items: &[(Uuid, (i64, i64), NewMemory)],
    ) -> ApiResult<Vec<Before>> {
        let authors: Vec<Option<String>> = items
            .iter()
            .map(|(_, _, m)| match m.visibility {
                Visibility::Private => who.acting_agent(m.agent_id.as_deref()),
                Visibility::Shared => None,
            })
            .collect();
        let places: Vec<Option<Place<'_>>> = items
            .iter()
            .zip(&authors)
            .map(|((id, (created, _), m), author)| {
                let wanted = self.search.of(&m.namespace).template.wants_previous_turn();
                Some(Place {
                    namespace: &m.namespace,
                    user_id: m.user_id.as_deref(),
                    session_id: m.session_id.as_deref().filter(|_| wanted)?,
                    private_to: author.as_deref(),
                    key: (turn_in(&m.metadata), *created, *id),
                })
            })
            .collect();
        // How many inputs of the call come before each in its conversation.
        let depth = |at: &Place<'_>| places.iter().flatten().filter(|p| at.follows(p)).count();
        let mut before = Vec::with_capacity(items.len());
        for at in &places {
            let Some(at) = at else {
                before.push(Before::default());
                continue;
            };
            let stored = self.previous_turn(at).await?;
            let in_call = places
                .iter()
                .enumerate()
                .filter_map(|(j, p)| p.as_ref().filter(|p| at.follows(p)).map(|p| (j, p.key)))
                .max_by(|a, b| by_turn(&a.1, &b.1));
            let turn = match (stored, in_call) {
                (Some(s), Some((j, key))) if by_turn(&key, &s.key) == Ordering::Greater => {
                    Some(Turn::InCall(j))
                }
                (Some(s), _) => Some(Turn::Stored(s)),
                (None, Some((j, _))) => Some(Turn::InCall(j)),
                (None, None) => None,
            };
            before.push(Before {
                turn,
                depth: depth(at),
            });
        }
        Ok(before)
    }

    /// Creates one memory (see [`Self::create`]).
    pub(super) async fn create_one(&self, who: &Principal, input: NewMemory) -> ApiResult<Created> {
        self.create(who, vec![input])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Internal("create returned nothing".into()))
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
        let thresholds = self.near_thresholds(&inputs).await?;
        let now_ms = millis(now);
        // A back-filled memory keeps when it was said; it is written now.
        let items = inputs
            .into_iter()
            .map(|m| {
                let created = m.created_at.map_or(now_ms, millis);
                (Uuid::now_v7(), (created, now_ms), m)
            })
            .collect();
        let prepared = self.embed_and_prepare(who, items).await?;

        // Creates sharing a duplicate or idempotency key are serialised here,
        // and, where near-duplicates are looked for, creates in one scope.
        let near_keys: Vec<String> = prepared
            .iter()
            .filter(|p| thresholds.of(&p.payload.namespace).is_some())
            .map(|p| {
                let ns = p.payload.namespace.as_str();
                let user = p.payload.user_id.as_deref().unwrap_or("");
                format!("near:{}", digest(&[ns, user, &Self::near_scope(p)]))
            })
            .collect();
        let mut locks: Vec<usize> = prepared
            .iter()
            .flat_map(|p| std::iter::once(&p.dup).chain(p.idem.as_ref()))
            .chain(&near_keys)
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

        let mut outcomes: Vec<Option<Created>> = Vec::with_capacity(prepared.len());
        // Merge jobs to queue once the memories are written, by input index.
        let mut merges: Vec<(usize, crate::model::Job)> = Vec::new();
        // Near-duplicates of the memories stored anyway, by input index.
        let mut near_of: Vec<(usize, NearDuplicate)> = Vec::new();
        let mut writes: Vec<NewPoint> = Vec::new();
        let mut written: Vec<(usize, Memory)> = Vec::new();
        // Within the batch, a repeat of an earlier entry returns that entry.
        let mut batch_keys: Vec<(String, usize)> = Vec::new();
        for (i, p) in prepared.into_iter().enumerate() {
            let ns = p.payload.namespace.clone();
            let author = p.payload.agent_id.clone();
            if let Some(idem) = &p.idem
                && let Some(r) = self.find_by_attr(&ns, idem, author.as_deref()).await?
            {
                outcomes.push(Some(Created {
                    memory: Self::memory_of(&r)?,
                    duplicate: false,
                    replayed: true,
                    near_duplicate: None,
                }));
                continue;
            }
            if !p.allow_dup
                && let Some(r) = self.find_by_attr(&ns, &p.dup, author.as_deref()).await?
            {
                outcomes.push(Some(Created {
                    memory: Self::memory_of(&r)?,
                    duplicate: true,
                    replayed: false,
                    near_duplicate: None,
                }));
                continue;
            }
            if let Some(threshold) = thresholds.of(&ns)
                && let Some((r, similarity)) = self.near_duplicate(&p, threshold).await?
            {
                // With a merge model a shared memory is stored and merged
                // later; a caller who insisted keeps both as they are. A
                // private one is refused as without a model: a merge job is
                // listed to every reader of the namespace, and its texts
                // must not reach another agent.
                let merging = !p.allow_near
                    && thresholds.merges(&ns)
                    && p.doc.visibility == Visibility::Shared;
                let near = NearDuplicate {
                    id: r.id,
                    similarity,
                    stored: p.allow_near || merging,
                    merge_job: None,
                };
                self.metrics.near_duplicate(match (p.allow_near, merging) {
                    (true, _) => "stored",
                    (false, true) => "merging",
                    (false, false) => "refused",
                });
                if merging {
                    merges.push((i, Self::merge_job(&ns, r.id, p.id)));
                } else if !p.allow_near {
                    outcomes.push(Some(Created {
                        memory: Self::memory_of(&r)?,
                        duplicate: false,
                        replayed: false,
                        near_duplicate: Some(near),
                    }));
                    continue;
                }
                near_of.push((i, near));
            }
            let earlier = batch_keys
                .iter()
                .find(|(k, _)| (*k == p.dup && !p.allow_dup) || Some(k) == p.idem.as_ref())
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
                let mut near_duplicate = near_of
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, n)| n.clone());
                if let (Some(near), Some((_, job))) = (
                    near_duplicate.as_mut(),
                    merges.iter().find(|(j, _)| *j == i && !duplicate),
                ) {
                    // Stored: a lost enqueue leaves both memories, reported.
                    match self.jobs.enqueue(job.clone(), 0, false).await {
                        Ok(j) => near.merge_job = Some(j.id),
                        Err(e) => tracing::warn!(error = %e, "cannot queue a merge"),
                    }
                }
                *slot = Some(Created {
                    memory,
                    duplicate,
                    replayed: false,
                    near_duplicate,
                });
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| ApiError::Internal("a create had no outcome".into())))
            .collect()
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
