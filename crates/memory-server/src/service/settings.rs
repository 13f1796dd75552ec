//! Each namespace's search settings (mode, fusion, template, keyword
//! analysis, BM25): the configuration's, then what an `admin` set through
//! the API.
//!
//! Consistency model:
//! - settings set through the API are records of a small collection shared
//!   by every instance, one per namespace, each carrying a hash of what was set;
//! - every instance keeps the settings in force in memory (each search and
//!   write reads them there) and applies a record whose hash it has not
//!   applied: at once on the instance that took the change, within [`POLL`]
//!   on the others (the change stream brings the record);
//! - a new analysis is applied by each instance to its own keyword index:
//!   postings are derived from the stored text, so nothing is written;
//! - a new template is applied to the stored memories by the instance that
//!   took the change, in the background, its progress a record beside the
//!   settings; a later template change stops it and starts its own; a second
//!   pass after two polls catches memories that instances which had not yet
//!   seen the change wrote meanwhile; and the re-index every instance runs at
//!   start finishes one that an instance's exit cut short.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;
use vector_index::durable::DurableCollection;
use vector_index::store::{AnyStore, Expect};
use vector_index::{Field, Filter, Payload};

use super::record::digest;
use super::template::Template;
use super::{MemoryService, derived_id};
use crate::auth::{Principal, Role};
use crate::config::{ConfigError, NamespaceSearch, SearchConfig};
use crate::error::{ApiError, ApiResult};
use crate::model::{NamespaceSettings, ReindexProgress, ReindexState, SettingsChange};
use crate::validate;

/// The settings' collection name in the store.
pub const SETTINGS_NAME: &str = "namespace-settings";

/// How often an instance looks for settings another instance changed.
pub const POLL: Duration = Duration::from_secs(1);

/// The longest template accepted through the API, in characters.
const MAX_TEMPLATE_CHARS: usize = 2_000;

/// Marks a settings record (its other attribute is `hash:<hash>`).
const SETTINGS_ATTR: &str = "settings";

/// A namespace's search settings with its parsed template.
#[derive(Debug)]
pub struct Resolved {
    /// Modes, fusion and analysis.
    pub settings: NamespaceSearch,
    /// What is embedded and keyword-indexed.
    pub template: Template,
}

/// What an admin set for one namespace, as applied here.
#[derive(Debug, Clone)]
struct Set {
    hash: String,
    change: SettingsChange,
    resolved: Arc<Resolved>,
}

/// Every namespace's search settings: the configuration's, resolved once at
/// start, and the ones set through the API, as last applied here.
pub struct SearchSettings {
    default: Arc<Resolved>,
    namespaces: HashMap<String, Arc<Resolved>>,
    set: RwLock<HashMap<String, Set>>,
    /// Stored settings this instance's configuration refused, by namespace
    /// and hash: warned about once, not re-read every poll.
    refused: RwLock<HashMap<String, String>>,
    records: Arc<DurableCollection<AnyStore>>,
}

/// The settings record of namespace `ns`.
fn settings_id(ns: &str) -> Uuid {
    derived_id(&["namespace-settings", ns])
}

/// The re-index progress record of namespace `ns`.
fn progress_id(ns: &str) -> Uuid {
    derived_id(&["namespace-reindex", ns])
}

/// A record's JSON document, or a 500 naming what could not be read.
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Internal(format!("{what} cannot be read: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> ApiResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| ApiError::Internal(e.to_string()))
}

/// A language's name on the wire and in configuration (`english`).
fn language_name(language: vector_index::Language) -> String {
    serde_json::to_value(language)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `base` with what `change` sets; a 400 names the first bad field.
fn overlay(mut s: NamespaceSearch, change: &SettingsChange) -> ApiResult<Resolved> {
    let c = change;
    s.mode = c.mode.unwrap_or(s.mode);
    s.fusion = c.fusion.unwrap_or(s.fusion);
    s.alpha = c.alpha.unwrap_or(s.alpha);
    s.rrf_k = c.rrf_k.unwrap_or(s.rrf_k);
    s.bm25.k1 = c.bm25_k1.unwrap_or(s.bm25.k1);
    s.bm25.b = c.bm25_b.unwrap_or(s.bm25.b);
    s.analyzer.stemming = c.stemming.unwrap_or(s.analyzer.stemming);
    s.analyzer.stop_words = c.stop_words.unwrap_or(s.analyzer.stop_words);
    if let Some(l) = &c.language {
        s.analyzer.language = vector_index::Language::ALL
            .into_iter()
            .find(|known| language_name(*known) == *l)
            .ok_or_else(|| {
                let known: Vec<String> = vector_index::Language::ALL
                    .into_iter()
                    .map(language_name)
                    .collect();
                ApiError::invalid(
                    "language",
                    format!("unknown language {l:?}; use one of {}", known.join(", ")),
                )
            })?;
    }
    if let Some((field, problem)) = s.out_of_range() {
        return Err(ApiError::invalid(field, format!("{field} {problem}")));
    }
    if let Some(t) = &c.template {
        if t.chars().count() > MAX_TEMPLATE_CHARS {
            return Err(ApiError::invalid(
                "template",
                format!("template must be at most {MAX_TEMPLATE_CHARS} characters"),
            ));
        }
        s.template.clone_from(t);
    }
    let template = Template::parse(&s.template)
        .map_err(|e| ApiError::invalid("template", format!("template: {e}")))?;
    Ok(Resolved {
        settings: s,
        template,
    })
}

impl SearchSettings {
    /// Resolves `config` (failing on a template that does not parse); what
    /// is set through the API is kept in `records`.
    pub fn new(
        config: &SearchConfig,
        records: Arc<DurableCollection<AnyStore>>,
    ) -> Result<Self, ConfigError> {
        let resolve = |settings: NamespaceSearch, key: String| {
            Template::parse(&settings.template)
                .map(|template| Arc::new(Resolved { settings, template }))
                .map_err(|e| ConfigError(format!("{key}: {e}")))
        };
        Ok(Self {
            default: resolve(config.namespace_defaults(), "search.template".into())?,
            namespaces: config
                .namespaces
                .keys()
                .map(|ns| {
                    let key = format!("search.namespaces.{ns}.template");
                    Ok((ns.clone(), resolve(config.namespace(ns), key)?))
                })
                .collect::<Result<_, ConfigError>>()?,
            set: RwLock::new(HashMap::new()),
            refused: RwLock::new(HashMap::new()),
            records,
        })
    }

    /// The collection of settings records (for readiness).
    pub fn records(&self) -> &Arc<DurableCollection<AnyStore>> {
        &self.records
    }

    /// The settings of `namespace`: what was set for it, else its own
    /// configured ones, else its pattern's, else the default.
    pub fn of(&self, namespace: &str) -> Arc<Resolved> {
        if let Some(s) = self.applied(namespace) {
            return s.resolved;
        }
        Arc::clone(self.configured(namespace).1)
    }

    /// What was set for `namespace` and applied here.
    fn applied(&self, namespace: &str) -> Option<Set> {
        let set = self.set.read().unwrap_or_else(|e| e.into_inner());
        set.get(namespace).cloned()
    }

    /// The configured settings of `namespace` and the configuration key
    /// they come from (`None`: the defaults).
    fn configured(&self, namespace: &str) -> (Option<&str>, &Arc<Resolved>) {
        if let Some((key, r)) = self.namespaces.get_key_value(namespace) {
            return (Some(key.as_str()), r);
        }
        match vector_index::text::by_namespace(&self.namespaces, namespace) {
            Some((key, r)) => (Some(key.as_str()), r),
            None => (None, &self.default),
        }
    }

    /// `namespace`'s configured settings with `change` over them.
    fn resolve(&self, namespace: &str, change: &SettingsChange) -> ApiResult<Resolved> {
        overlay(self.configured(namespace).1.settings.clone(), change)
    }

    /// Makes `set` the settings of `namespace` here (`None`: the
    /// configured ones); returns the settings before and after.
    fn install(&self, namespace: &str, set: Option<Set>) -> (Arc<Resolved>, Arc<Resolved>) {
        let before = self.of(namespace);
        let mut map = self.set.write().unwrap_or_else(|e| e.into_inner());
        match set {
            Some(s) => {
                map.insert(namespace.to_owned(), s);
            }
            None => {
                map.remove(namespace);
            }
        }
        drop(map);
        (before, self.of(namespace))
    }

    /// The hash of every namespace's stored settings, from the records' index.
    fn stored(&self) -> HashMap<String, String> {
        let index = self.records.index();
        index
            .ids_matching(&Filter::all().eq(Field::Attribute, SETTINGS_ATTR))
            .into_iter()
            .filter_map(|id| index.payload(id))
            .filter_map(|p| {
                let hash = p
                    .attributes
                    .iter()
                    .find_map(|a| a.strip_prefix("hash:"))?
                    .to_owned();
                Some((p.namespace, hash))
            })
            .collect()
    }

    /// What is stored for `namespace`, read from the store.
    async fn load(&self, namespace: &str) -> ApiResult<Option<SettingsChange>> {
        let what = format!("the settings of {namespace:?}");
        self.read(settings_id(namespace), &what).await
    }

    /// Stores `change` as `namespace`'s settings; returns its hash.
    async fn save(&self, namespace: &str, change: &SettingsChange) -> ApiResult<String> {
        let document = encode(change)?;
        let hash = digest(&[&String::from_utf8_lossy(&document)]);
        let marks = vec![SETTINGS_ATTR.to_owned(), format!("hash:{hash}")];
        self.write(settings_id(namespace), namespace, marks, &document)
            .await?;
        Ok(hash)
    }

    /// The latest re-index of `namespace`, if any.
    async fn progress(&self, namespace: &str) -> ApiResult<Option<ReindexProgress>> {
        let what = format!("the re-index of {namespace:?}");
        self.read(progress_id(namespace), &what).await
    }

    /// Records where `namespace`'s re-index stands.
    async fn report(&self, namespace: &str, progress: &ReindexProgress) -> ApiResult<()> {
        let marks = vec!["reindex".to_owned()];
        self.write(progress_id(namespace), namespace, marks, &encode(progress)?)
            .await
    }

    /// Record `id`'s JSON document, if the record exists; `what` names it in an error.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        id: Uuid,
        what: &str,
    ) -> ApiResult<Option<T>> {
        match self.records.get(id).await? {
            Some(r) => decode(&r.document, what).map(Some),
            None => Ok(None),
        }
    }

    /// Writes record `id` of `namespace`, marked with `attributes`, holding `document`.
    async fn write(
        &self,
        id: Uuid,
        namespace: &str,
        attributes: Vec<String>,
        document: &[u8],
    ) -> ApiResult<()> {
        let payload = Payload {
            namespace: namespace.to_owned(),
            attributes,
            updated_at: vector_index::durable::now_millis(),
            ..Payload::default()
        };
        self.records
            .upsert_document(id, &[], payload, document, Expect::Any)
            .await?;
        Ok(())
    }
}

impl MemoryService {
    /// The search settings in force in `ns`, where they come from, and its
    /// latest re-index (`read`).
    pub async fn settings(&self, who: &Principal, ns: &str) -> ApiResult<NamespaceSettings> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Read)?;
        let reindex = self.search.progress(ns).await?;
        Ok(self.describe(ns, reindex))
    }

    /// Sets `ns`'s own search settings (`admin`). A new template re-indexes
    /// the namespace's memories in the background; the answer carries the
    /// re-index's first progress.
    pub async fn set_settings(
        self: &Arc<Self>,
        who: &Principal,
        ns: &str,
        change: SettingsChange,
    ) -> ApiResult<NamespaceSettings> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Admin)?;
        let resolved = self.search.resolve(ns, &change)?;
        let hash = self.search.save(ns, &change).await?;
        let set = Set {
            hash,
            change,
            resolved: Arc::new(resolved),
        };
        self.changed(ns, Some(set)).await
    }

    /// Drops `ns`'s own search settings (`admin`): the configured ones apply
    /// again, re-indexing if that changes the template.
    pub async fn reset_settings(
        self: &Arc<Self>,
        who: &Principal,
        ns: &str,
    ) -> ApiResult<NamespaceSettings> {
        validate::namespace(&self.limits, ns)?;
        who.require(ns, Role::Admin)?;
        self.search
            .records
            .delete(settings_id(ns), Expect::Any)
            .await?;
        self.changed(ns, None).await
    }

    /// Applies a change taken here and starts its re-index if the template changed.
    async fn changed(self: &Arc<Self>, ns: &str, set: Option<Set>) -> ApiResult<NamespaceSettings> {
        let template_changed = self.apply_settings(ns, set).await;
        let reindex = if template_changed {
            let now = OffsetDateTime::now_utc();
            let progress = ReindexProgress {
                state: ReindexState::Running,
                template: self.search.of(ns).template.expanded().to_owned(),
                total: self
                    .collection
                    .count_matching(&Filter::all().eq(Field::Namespace, ns)),
                done: 0,
                rewritten: 0,
                started_at: now,
                updated_at: now,
                error: None,
            };
            self.search.report(ns, &progress).await?;
            tokio::spawn(Arc::clone(self).reindex_namespace(ns.to_owned(), progress.clone()));
            Some(progress)
        } else {
            self.search.progress(ns).await?
        };
        Ok(self.describe(ns, reindex))
    }

    /// Makes `set` `ns`'s settings here, re-analyzing the keyword index if
    /// the analysis changed; returns whether the template changed.
    async fn apply_settings(&self, ns: &str, set: Option<Set>) -> bool {
        let is_set = set.is_some();
        let (before, after) = self.search.install(ns, set);
        let analysis = after.settings.analyzer;
        let index = self.collection.index();
        if index.analyzer(ns) != analysis {
            let collection = Arc::clone(&self.collection);
            let namespace = ns.to_owned();
            let redone = tokio::task::spawn_blocking(move || {
                collection
                    .index()
                    .set_analyzer(&namespace, is_set.then_some(analysis))
            })
            .await;
            tracing::info!(namespace = ns, ?redone, "keyword analysis changed");
        }
        before.template.expanded() != after.template.expanded()
    }

    /// Applies the settings other instances changed since the last look
    /// (and, at start, every stored one).
    pub async fn refresh_settings(&self) -> ApiResult<()> {
        let stored = self.search.stored();
        let applied: HashMap<String, String> = {
            let set = self.search.set.read().unwrap_or_else(|e| e.into_inner());
            set.iter()
                .map(|(ns, s)| (ns.clone(), s.hash.clone()))
                .collect()
        };
        // Refusals of settings since changed or removed are forgotten.
        let mut refusals = self
            .search
            .refused
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        refusals.retain(|ns, hash| stored.get(ns) == Some(hash));
        for (ns, hash) in &stored {
            if applied.get(ns) == Some(hash) || refusals.get(ns) == Some(hash) {
                continue;
            }
            let Some(change) = self.search.load(ns).await? else {
                continue;
            };
            match self.search.resolve(ns, &change) {
                Ok(resolved) => {
                    refusals.remove(ns);
                    let set = Set {
                        hash: hash.clone(),
                        change,
                        resolved: Arc::new(resolved),
                    };
                    self.apply_settings(ns, Some(set)).await;
                }
                // Another instance's configuration accepted what this one's
                // does not (a rolling upgrade): keep what is in force here,
                // and say so once for this version of the settings.
                Err(e) => {
                    tracing::warn!(namespace = %ns, error = %e, "settings not applied");
                    refusals.insert(ns.clone(), hash.clone());
                }
            }
        }
        *self
            .search
            .refused
            .write()
            .unwrap_or_else(|e| e.into_inner()) = refusals;
        for ns in applied.keys().filter(|ns| !stored.contains_key(*ns)) {
            self.apply_settings(ns, None).await;
        }
        Ok(())
    }

    /// Rewrites `ns`'s memories for the template `progress` names, reporting
    /// as it goes; stops when another template takes over.
    async fn reindex_namespace(self: Arc<Self>, ns: String, mut progress: ReindexProgress) {
        let scope = Filter::all().eq(Field::Namespace, ns.as_str());
        for pass in 0..2 {
            if pass == 1 {
                // Instances that had not yet seen the change wrote with the old template.
                tokio::time::sleep(POLL * 2).await;
            }
            let mut ids = self.collection.ids_matching(&scope);
            ids.sort_unstable();
            for chunk in ids.chunks(super::reindex::REINDEX_BATCH) {
                if !self.reindexing(&ns, &progress) {
                    return;
                }
                match self.rewrite_stale(chunk).await {
                    Ok(n) => progress.rewritten += n,
                    Err(e) => {
                        progress.state = ReindexState::Failed;
                        progress.error = Some(e.to_string());
                    }
                }
                if pass == 0 {
                    progress.done += chunk.len() as u64;
                }
                self.report_progress(&ns, &mut progress).await;
                if progress.state == ReindexState::Failed {
                    return;
                }
            }
        }
        progress.state = ReindexState::Done;
        self.report_progress(&ns, &mut progress).await;
    }

    /// Whether the template `progress` applies is still `ns`'s.
    fn reindexing(&self, ns: &str, progress: &ReindexProgress) -> bool {
        self.search.of(ns).template.expanded() == progress.template
    }

    /// Records `progress` as of now, unless another template took over (its
    /// own re-index reports then).
    async fn report_progress(&self, ns: &str, progress: &mut ReindexProgress) {
        progress.updated_at = OffsetDateTime::now_utc();
        if self.reindexing(ns, progress)
            && let Err(e) = self.search.report(ns, progress).await
        {
            tracing::warn!(namespace = %ns, error = %e, "re-index progress not recorded");
        }
    }

    /// `ns`'s settings in force, as the API shows them.
    fn describe(&self, ns: &str, reindex: Option<ReindexProgress>) -> NamespaceSettings {
        let applied = self.search.applied(ns);
        let (key, configured) = self.search.configured(ns);
        let r = applied
            .as_ref()
            .map_or_else(|| Arc::clone(configured), |s| Arc::clone(&s.resolved));
        let s = &r.settings;
        let language = language_name(s.analyzer.language);
        NamespaceSettings {
            namespace: ns.to_owned(),
            mode: s.mode,
            fusion: s.fusion,
            alpha: s.alpha,
            rrf_k: s.rrf_k,
            template: r.template.source().to_owned(),
            template_expanded: r.template.expanded().to_owned(),
            language,
            stemming: s.analyzer.stemming,
            stop_words: s.analyzer.stop_words,
            bm25_k1: s.bm25.k1,
            bm25_b: s.bm25.b,
            source: match (&applied, key) {
                (Some(_), _) => "api",
                (None, None) => "default",
                (None, Some(k)) if k.ends_with('*') => "pattern",
                (None, Some(_)) => "namespace",
            }
            .to_owned(),
            matched: key.map(str::to_owned),
            set: applied.map(|s| s.change),
            reindex,
            named_templates: super::template::NAMED
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_per_namespace_and_kind() {
        assert_ne!(settings_id("a"), settings_id("b"));
        assert_ne!(settings_id("a"), progress_id("a"));
        assert_ne!(settings_id("a"), derived_id(&["namespace-policy", "a"]));
    }

    #[test]
    fn a_change_overlays_the_configured_settings_and_names_a_bad_field() {
        let base = SearchConfig::default().namespace_defaults();
        let r = overlay(
            base.clone(),
            &SettingsChange {
                alpha: Some(0.8),
                template: Some("chat".into()),
                language: Some("french".into()),
                ..SettingsChange::default()
            },
        )
        .unwrap();
        assert_eq!(r.settings.alpha, 0.8);
        assert_eq!(r.settings.analyzer.language, vector_index::Language::French);
        assert_eq!(r.template.source(), "chat");
        assert_eq!(r.settings.mode, base.mode, "what is not set stays");
        let field = |change: SettingsChange| match overlay(base.clone(), &change) {
            Err(ApiError::BadRequest { details, .. }) => details["field"].clone(),
            other => panic!("expected a 400, got {other:?}"),
        };
        let bad = |f: fn(&mut SettingsChange)| {
            let mut c = SettingsChange::default();
            f(&mut c);
            field(c)
        };
        assert_eq!(bad(|c| c.alpha = Some(1.5)), "alpha");
        assert_eq!(bad(|c| c.alpha = Some(f32::NAN)), "alpha");
        assert_eq!(bad(|c| c.rrf_k = Some(0)), "rrf_k");
        assert_eq!(bad(|c| c.bm25_k1 = Some(9.0)), "bm25_k1");
        assert_eq!(bad(|c| c.bm25_b = Some(-1.0)), "bm25_b");
        assert_eq!(bad(|c| c.language = Some("klingon".into())), "language");
        assert_eq!(bad(|c| c.template = Some("{nope}".into())), "template");
        assert_eq!(bad(|c| c.template = Some("x".repeat(3000))), "template");
    }
}
