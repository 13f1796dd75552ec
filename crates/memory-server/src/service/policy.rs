//! Each namespace's memory policy: the server's `[policy]` section unless a
//! policy was set for the namespace through the API.
//!
//! Set policies are records of a small collection shared by every instance
//! (same store, same replication), one per namespace. A policy can change at
//! any time, so it is never cached: the collection's in-memory index (kept
//! current by the change stream) says whether a namespace has one, and only
//! then is the record read.

use std::sync::Arc;

use uuid::Uuid;
use vector_index::Payload;
use vector_index::durable::DurableCollection;
use vector_index::store::{AnyStore, Expect};

use super::{MemoryService, derived_id};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::model::{MemoryPolicy, NamespacePolicy, PolicySource};
use crate::validate;

/// The policies' collection name in the store.
pub const POLICIES_NAME: &str = "namespace-policies";

/// Namespace policies: the configured default and the ones set per namespace.
pub struct Policies {
    records: Arc<DurableCollection<AnyStore>>,
    default: MemoryPolicy,
}

/// The record of namespace `ns`'s policy.
fn record_id(ns: &str) -> Uuid {
    derived_id(&["namespace-policy", ns])
}

impl Policies {
    /// Policies kept in `records`, with `default` for namespaces without one.
    pub fn new(records: Arc<DurableCollection<AnyStore>>, default: MemoryPolicy) -> Self {
        Self { records, default }
    }

    /// The collection (for readiness).
    pub fn records(&self) -> &Arc<DurableCollection<AnyStore>> {
        &self.records
    }

    /// The policy in force in `ns` (the namespace is not checked here).
    pub async fn of(&self, ns: &str) -> ApiResult<NamespacePolicy> {
        let id = record_id(ns);
        let stored = if self.records.index().contains(id) {
            self.records.get(id).await?
        } else {
            None
        };
        let (policy, source) = match stored {
            Some(r) => {
                let policy = serde_json::from_slice(&r.document).map_err(|e| {
                    ApiError::Internal(format!("the policy of {ns:?} cannot be read: {e}"))
                })?;
                (policy, PolicySource::Stored)
            }
            None => (self.default.clone(), PolicySource::Config),
        };
        Ok(NamespacePolicy {
            namespace: ns.to_owned(),
            policy,
            source,
        })
    }

    /// Sets `ns`'s policy (validated by the caller); later sets win.
    pub async fn set(&self, ns: &str, policy: &MemoryPolicy) -> ApiResult<NamespacePolicy> {
        let document = serde_json::to_vec(policy).map_err(|e| ApiError::Internal(e.to_string()))?;
        let payload = Payload {
            namespace: ns.to_owned(),
            ..Payload::default()
        };
        self.records
            .upsert_document(record_id(ns), &[], payload, &document, Expect::Any)
            .await?;
        Ok(NamespacePolicy {
            namespace: ns.to_owned(),
            policy: policy.clone(),
            source: PolicySource::Stored,
        })
    }

    /// Drops `ns`'s own policy: the configured default applies again.
    pub async fn reset(&self, ns: &str) -> ApiResult<NamespacePolicy> {
        self.records.delete(record_id(ns), Expect::Any).await?;
        Ok(NamespacePolicy {
            namespace: ns.to_owned(),
            policy: self.default.clone(),
            source: PolicySource::Config,
        })
    }
}

impl MemoryService {
    /// `ns`'s policy in force (readers of the namespace may see it).
    pub async fn policy(&self, who: &Principal, ns: &str) -> ApiResult<NamespacePolicy> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Read)?;
        self.policies.of(ns).await
    }

    /// Sets `ns`'s policy (`admin` of the namespace only).
    pub async fn set_policy(
        &self,
        who: &Principal,
        ns: &str,
        policy: MemoryPolicy,
    ) -> ApiResult<NamespacePolicy> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Admin)?;
        validate::policy(&policy)?;
        self.check_policy_model(&policy)?;
        self.policies.set(ns, &policy).await
    }

    /// Drops `ns`'s own policy (`admin` only); the server's default applies.
    pub async fn reset_policy(&self, who: &Principal, ns: &str) -> ApiResult<NamespacePolicy> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Admin)?;
        self.policies.reset(ns).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_per_namespace_and_apart_from_model_bindings() {
        assert_eq!(record_id("a"), record_id("a"));
        assert_ne!(record_id("a"), record_id("b"));
        assert_ne!(record_id("a"), derived_id(&["namespace-model", "a"]));
    }
}
