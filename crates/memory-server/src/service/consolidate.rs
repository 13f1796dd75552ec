//! Applying an extraction job's planned decisions, each at most once.
//!
//! Every write carries a marker naming the job and the decision
//! (`job <id> decision <n>`): an `add` uses it as its idempotency key, an
//! `update` or `supersede` writes it into the reason kept in history. A
//! re-run finds the marker and reports what the first run did instead of
//! doing it again. Memories the job writes carry their provenance in
//! metadata: `source_session_id`, `source_message_ids`, `source_job_id`
//! (and `people`).

use serde_json::{Map, json};
use uuid::Uuid;

use super::MemoryService;
use super::record::Doc;
use crate::error::ApiResult;
use crate::jobs::Planned;
use crate::model::{Action, Decision, MemoryPatch, NewMemory, Session, Supersede};

impl MemoryService {
    /// Applies decision `i` of job `job` (once, however often it is called).
    pub(super) async fn apply_planned(
        &self,
        ns: &str,
        session: &Session,
        job: Uuid,
        i: usize,
        p: &Planned,
    ) -> ApiResult<Decision> {
        let who = Self::maintainer(ns);
        let marker = format!("job {job} decision {i}");
        let mut provenance = Map::new();
        provenance.insert("source_session_id".into(), json!(session.session_id));
        provenance.insert("source_message_ids".into(), json!(p.messages));
        provenance.insert("source_job_id".into(), json!(job.to_string()));
        if !p.people.is_empty() {
            provenance.insert("people".into(), json!(p.people));
        }
        let decision = |action, memory_id, reason: String| Decision {
            action,
            text: p.text.clone(),
            memory_id,
            target_id: p.target,
            reason,
        };
        let target = match (p.action, p.target) {
            (Action::Add | Action::Ignore, _) => None,
            (_, Some(t)) => Some(t),
            (_, None) => return Ok(decision(Action::Ignore, None, p.reason.clone())),
        };
        match (p.action, target) {
            (Action::Ignore, _) => Ok(decision(Action::Ignore, None, p.reason.clone())),
            (Action::Add, _) | (_, None) => {
                let new = NewMemory {
                    namespace: ns.to_owned(),
                    text: p.text.clone(),
                    user_id: session.user_id.clone(),
                    session_id: Some(session.session_id.clone()),
                    kind: p.kind,
                    tags: p.tags.clone(),
                    metadata: provenance,
                    valid_from: p.valid_from,
                    valid_until: p.valid_until,
                    idempotency_key: Some(format!("job:{job}:{i}")),
                    // The model saw the similar memories and chose to add.
                    allow_near_duplicate: true,
                    allow_duplicate: false,
                    created_at: None,
                    ..NewMemory::default()
                };
                let created = self.create_one(&who, new).await?;
                Ok(if created.duplicate {
                    decision(
                        Action::Ignore,
                        Some(created.memory.id),
                        format!("{}; identical text is already stored", p.reason),
                    )
                } else {
                    decision(Action::Add, Some(created.memory.id), p.reason.clone())
                })
            }
            (action, Some(t)) => {
                let Some(record) = self.timed("get", self.collection.get(t)).await? else {
                    return Ok(decision(
                        Action::Ignore,
                        None,
                        format!("{}; the memory it was about is gone", p.reason),
                    ));
                };
                let doc = Doc::of(&record)?;
                let done_before = doc
                    .reason
                    .iter()
                    .chain(doc.history.iter().filter_map(|r| r.reason.as_ref()))
                    .any(|r| r.contains(&marker));
                if done_before {
                    let written = if action == Action::Supersede {
                        doc.superseded_by
                    } else {
                        Some(t)
                    };
                    return Ok(decision(action, written, p.reason.clone()));
                }
                if let Some(successor) = doc.superseded_by {
                    return Ok(decision(
                        Action::Ignore,
                        None,
                        format!(
                            "{}; the memory was superseded by {successor} meanwhile",
                            p.reason
                        ),
                    ));
                }
                let reason = format!("{marker}: {}", p.reason);
                if action == Action::Update {
                    let mut metadata = doc.metadata.clone();
                    metadata.extend(provenance);
                    let patch = MemoryPatch {
                        text: Some(p.text.clone()),
                        metadata: Some(metadata),
                        ..MemoryPatch::default()
                    };
                    let m = self
                        .update_for(&who, t, patch, (None, None), Some(reason))
                        .await?;
                    return Ok(decision(Action::Update, Some(m.id), p.reason.clone()));
                }
                let req = Supersede {
                    text: p.text.clone(),
                    reason: Some(reason),
                    tags: (!p.tags.is_empty()).then(|| p.tags.clone()),
                    metadata: None,
                    kind: Some(p.kind),
                    valid_from: p.valid_from,
                    version: Some(record.version),
                };
                let done = self.supersede_for(&who, t, req, None, provenance).await?;
                Ok(decision(
                    Action::Supersede,
                    Some(done.successor.id),
                    p.reason.clone(),
                ))
            }
        }
    }
}
