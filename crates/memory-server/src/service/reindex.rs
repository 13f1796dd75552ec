//! Re-indexing after a template change: a memory whose stored contextual text
//! differs from what its namespace's template renders now is rewritten with
//! the new text (keyword index) and, when the embedded text changed, a new
//! vector. It runs in the background at start over every memory, and after a
//! template set through the API over that namespace (`settings.rs`); writes
//! are conditional on the version read, so a concurrent update (or another
//! instance doing the same work) always wins and nothing is lost.

use uuid::Uuid;
use vector_index::store::{Expect, Record};
use vector_index::{Filter, IndexError};

use super::indexed::Indexed;
use super::{Doc, MemoryService};
use crate::error::{ApiError, ApiResult};
use providers::embed::Purpose;

/// Memories read (and at most embedded) per round.
pub(super) const REINDEX_BATCH: usize = 256;

/// A memory to rewrite: its record, its texts as rendered now, and whether to re-embed.
struct Stale {
    record: Record,
    indexed: Indexed,
    embed: bool,
}

impl MemoryService {
    /// Brings every memory's contextual text, and its vector where the
    /// embedded text changes, in line with the current templates; returns
    /// how many memories were rewritten.
    pub async fn reindex(&self) -> ApiResult<u64> {
        let mut ids = self.collection.ids_matching(&Filter::all());
        ids.sort_unstable();
        let mut rewritten = 0;
        for chunk in ids.chunks(REINDEX_BATCH) {
            rewritten += self.rewrite_stale(chunk).await?;
        }
        Ok(rewritten)
    }

    /// Rewrites those of `ids` whose contextual text is stale; returns how many.
    pub(super) async fn rewrite_stale(&self, ids: &[Uuid]) -> ApiResult<u64> {
        let mut rewritten = 0;
        let records = self
            .timed("get_many", self.collection.get_many(ids))
            .await?;
        let mut stale = Vec::new();
        for record in records.into_iter().flatten() {
            let Ok(doc) = Doc::of(&record) else { continue };
            let indexed = self.indexed_of(record.id, &record.payload, &doc).await?;
            if indexed.text == record.payload.text {
                continue;
            }
            let embed = !doc.client_vector && indexed.text != doc.embedded_from(&record.payload);
            stale.push(Stale {
                record,
                indexed,
                embed,
            });
        }
        let texts: Vec<String> = stale
            .iter()
            .filter(|s| s.embed)
            .map(|s| s.indexed.embedded.clone())
            .collect();
        let mut vectors = if texts.is_empty() {
            Vec::new()
        } else {
            self.embed(texts, Purpose::Document).await?
        }
        .into_iter();
        for s in stale {
            let Stale {
                record,
                indexed,
                embed,
            } = s;
            let vector = if embed {
                indexed.vector(vectors.next().ok_or_else(|| {
                    ApiError::Internal("embedder returned too few vectors".into())
                })?)
            } else {
                record.vector
            };
            let mut payload = record.payload;
            payload.text = indexed.text;
            let write = self.collection.upsert_document(
                record.id,
                &vector,
                payload,
                &record.document,
                Expect::Version(record.version),
            );
            match self.timed("put", write).await {
                Ok(_) => rewritten += 1,
                // Changed or deleted since read: the newer write has its own text.
                Err(IndexError::VersionConflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(rewritten)
    }
}
