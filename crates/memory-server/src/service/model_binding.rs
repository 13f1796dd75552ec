//! Binds each namespace to one embedding model and dimension.
//!
//! Vectors of different models are not comparable, and each model has its own
//! collection, so a server started with another model would silently see an
//! empty namespace. The first write into a namespace records its model in a
//! small registry collection shared by every instance (same store, same
//! replication); from then on any request for that namespace from a server
//! running another model is a 409 `model_mismatch`, naming both models.
//!
//! A binding never changes once made, so a cached one is always right; two
//! instances racing to bind the same namespace are settled by the store's
//! create-only write.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use uuid::Uuid;
use vector_index::durable::DurableCollection;
use vector_index::store::AnyStore;
use vector_index::store::Expect;
use vector_index::{Filter, IndexError, Payload};

use super::derived_id;
use crate::error::{ApiError, ApiResult};
use crate::model::Binding;

/// The registry's collection name in the store.
pub const REGISTRY_NAME: &str = "namespace-models";

/// The namespace → model registry, with an in-process cache.
pub struct ModelBindings {
    registry: Arc<DurableCollection<AnyStore>>,
    this: Binding,
    known: RwLock<HashMap<String, Binding>>,
}

/// The models the namespaces of `registry` are bound to: what a start reads
/// before it chooses its embedder (`embedder.provider = "auto"`). A record
/// that cannot be read is left out with a warning; requests for its
/// namespace say so.
pub async fn bound_models(
    registry: &DurableCollection<AnyStore>,
) -> Result<BTreeSet<String>, IndexError> {
    let ids = registry.ids_matching(&Filter::all());
    let mut models = BTreeSet::new();
    for chunk in ids.chunks(256) {
        for record in registry.get_many(chunk).await?.into_iter().flatten() {
            match serde_json::from_slice::<Binding>(&record.document) {
                Ok(binding) => {
                    models.insert(binding.model);
                }
                Err(e) => tracing::warn!(
                    namespace = %record.payload.namespace,
                    error = %e,
                    "unreadable model binding left out of the embedder's choice"
                ),
            }
        }
    }
    Ok(models)
}

/// The registry record of namespace `ns`.
fn record_id(ns: &str) -> Uuid {
    derived_id(&["namespace-model", ns])
}

impl ModelBindings {
    /// A registry for a server embedding with `model` of `dims` dimensions.
    pub fn new(registry: Arc<DurableCollection<AnyStore>>, model: &str, dims: usize) -> Self {
        Self {
            registry,
            this: Binding {
                model: model.to_owned(),
                dims,
            },
            known: RwLock::new(HashMap::new()),
        }
    }

    /// The registry collection (for readiness).
    pub fn registry(&self) -> &Arc<DurableCollection<AnyStore>> {
        &self.registry
    }

    /// Fails with 409 if `ns` is bound to another model; an unbound namespace passes.
    pub async fn check(&self, ns: &str) -> ApiResult<()> {
        match self.lookup(ns).await? {
            Some(b) => self.compare(ns, &b),
            None => Ok(()),
        }
    }

    /// Binds `ns` to this server's model unless it is bound already; 409 if
    /// it is bound to another.
    pub async fn bind(&self, ns: &str) -> ApiResult<()> {
        if let Some(b) = self.lookup(ns).await? {
            return self.compare(ns, &b);
        }
        let document =
            serde_json::to_vec(&self.this).map_err(|e| ApiError::Internal(e.to_string()))?;
        let payload = Payload {
            namespace: ns.to_owned(),
            ..Payload::default()
        };
        let written = self
            .registry
            .upsert_document(record_id(ns), &[], payload, &document, Expect::Absent)
            .await;
        match written {
            Ok(_) => {
                self.remember(ns, self.this.clone());
                Ok(())
            }
            // Another instance bound it first: its binding decides.
            Err(IndexError::VersionConflict { .. }) => match self.fetch(ns).await? {
                Some(b) => self.compare(ns, &b),
                None => Err(ApiError::Unavailable(format!(
                    "namespace {ns:?} is being bound to a model elsewhere; retry"
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn lookup(&self, ns: &str) -> ApiResult<Option<Binding>> {
        if let Some(b) = self.known.read().ok().and_then(|k| k.get(ns).cloned()) {
            return Ok(Some(b));
        }
        // The registry's index is in memory and follows the change stream,
        // so an unbound namespace costs no store round trip.
        if !self.registry.index().contains(record_id(ns)) {
            return Ok(None);
        }
        self.fetch(ns).await
    }

    async fn fetch(&self, ns: &str) -> ApiResult<Option<Binding>> {
        let Some(record) = self.registry.get(record_id(ns)).await? else {
            return Ok(None);
        };
        let binding: Binding = serde_json::from_slice(&record.document)
            .map_err(|e| ApiError::Internal(format!("unreadable model binding of {ns:?}: {e}")))?;
        self.remember(ns, binding.clone());
        Ok(Some(binding))
    }

    fn remember(&self, ns: &str, binding: Binding) {
        if let Ok(mut known) = self.known.write() {
            known.insert(ns.to_owned(), binding);
        }
    }

    fn compare(&self, ns: &str, bound: &Binding) -> ApiResult<()> {
        if *bound == self.this {
            return Ok(());
        }
        Err(ApiError::ModelMismatch {
            namespace: ns.to_owned(),
            bound: bound.clone(),
            server: self.this.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_stable_and_distinct_per_namespace() {
        assert_eq!(record_id("a"), record_id("a"));
        assert_ne!(record_id("a"), record_id("b"));
        assert_ne!(record_id("ab"), record_id("a\0b"));
    }
}
