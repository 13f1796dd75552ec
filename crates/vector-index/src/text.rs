//! Text analysis for keyword search: Unicode words, lowercased, without stop
//! words, stemmed, per language.
//!
//! The same analyzer must read the stored text and the query, so a
//! namespace's analyzer is part of the collection's configuration.

use std::collections::HashSet;

use hashbrown::HashMap;
use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

/// Terms longer than this (in bytes) are dropped: they are noise (hashes,
/// base64) and would only bloat the term dictionary.
const MAX_TERM_BYTES: usize = 64;

/// A language with a Snowball stemmer and a stop-word list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Arabic.
    Arabic,
    /// Danish.
    Danish,
    /// Dutch.
    Dutch,
    /// English.
    #[default]
    English,
    /// Finnish.
    Finnish,
    /// French.
    French,
    /// German.
    German,
    /// Greek.
    Greek,
    /// Hungarian.
    Hungarian,
    /// Italian.
    Italian,
    /// Norwegian.
    Norwegian,
    /// Portuguese.
    Portuguese,
    /// Romanian.
    Romanian,
    /// Russian.
    Russian,
    /// Spanish.
    Spanish,
    /// Swedish.
    Swedish,
    /// Turkish.
    Turkish,
}

impl Language {
    /// Every supported language.
    pub const ALL: [Language; 17] = [
        Language::Arabic,
        Language::Danish,
        Language::Dutch,
        Language::English,
        Language::Finnish,
        Language::French,
        Language::German,
        Language::Greek,
        Language::Hungarian,
        Language::Italian,
        Language::Norwegian,
        Language::Portuguese,
        Language::Romanian,
        Language::Russian,
        Language::Spanish,
        Language::Swedish,
        Language::Turkish,
    ];

    fn algorithm(self) -> Algorithm {
        match self {
            Language::Arabic => Algorithm::Arabic,
            Language::Danish => Algorithm::Danish,
            Language::Dutch => Algorithm::Dutch,
            Language::English => Algorithm::English,
            Language::Finnish => Algorithm::Finnish,
            Language::French => Algorithm::French,
            Language::German => Algorithm::German,
            Language::Greek => Algorithm::Greek,
            Language::Hungarian => Algorithm::Hungarian,
            Language::Italian => Algorithm::Italian,
            Language::Norwegian => Algorithm::Norwegian,
            Language::Portuguese => Algorithm::Portuguese,
            Language::Romanian => Algorithm::Romanian,
            Language::Russian => Algorithm::Russian,
            Language::Spanish => Algorithm::Spanish,
            Language::Swedish => Algorithm::Swedish,
            Language::Turkish => Algorithm::Turkish,
        }
    }

    /// The ISO 639-1 code the stop-word lists are keyed by.
    fn iso(self) -> &'static str {
        match self {
            Language::Arabic => "ar",
            Language::Danish => "da",
            Language::Dutch => "nl",
            Language::English => "en",
            Language::Finnish => "fi",
            Language::French => "fr",
            Language::German => "de",
            Language::Greek => "el",
            Language::Hungarian => "hu",
            Language::Italian => "it",
            Language::Norwegian => "no",
            Language::Portuguese => "pt",
            Language::Romanian => "ro",
            Language::Russian => "ru",
            Language::Spanish => "es",
            Language::Swedish => "sv",
            Language::Turkish => "tr",
        }
    }
}

/// How a namespace's text is turned into terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyzerSettings {
    /// Language of the stemmer and the stop words.
    pub language: Language,
    /// Reduce words to their stem ("running" and "runs" both become "run").
    pub stemming: bool,
    /// Drop the language's most common words ("the", "of", ...).
    pub stop_words: bool,
}

impl Default for AnalyzerSettings {
    fn default() -> Self {
        Self {
            language: Language::English,
            stemming: true,
            stop_words: true,
        }
    }
}

/// Turns text into search terms.
pub struct Analyzer {
    settings: AnalyzerSettings,
    stemmer: Option<Stemmer>,
    stop_words: HashSet<&'static str>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Analyzer {
    /// The analyzer for `settings`.
    pub fn new(settings: AnalyzerSettings) -> Self {
        let stop_words = if settings.stop_words {
            // Every `Language` has a list (a unit test checks it), so this
            // lookup cannot reach the crate's panic on unknown codes.
            stop_words::get(settings.language.iso())
                .iter()
                .copied()
                .collect()
        } else {
            HashSet::new()
        };
        Self {
            settings,
            stemmer: settings
                .stemming
                .then(|| Stemmer::create(settings.language.algorithm())),
            stop_words,
        }
    }

    /// The settings this analyzer was built from.
    pub fn settings(&self) -> AnalyzerSettings {
        self.settings
    }

    /// The terms of `text`, in order, repeats kept.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        // Invisible format characters go before segmentation: they neither
        // join nor split words as a reader sees them, so `\u{202e}evil\u{202c}`
        // and `e\u{200b}vil` are both `evil`.
        let visible: std::borrow::Cow<'_, str> = if text.chars().any(is_invisible_format) {
            text.chars()
                .filter(|c| !is_invisible_format(*c))
                .collect::<String>()
                .into()
        } else {
            text.into()
        };
        for word in visible.unicode_words() {
            let lower = word.to_lowercase();
            if lower.len() > MAX_TERM_BYTES || self.stop_words.contains(lower.as_str()) {
                continue;
            }
            let term = match &self.stemmer {
                Some(s) => s.stem(&lower).into_owned(),
                None => lower,
            };
            if !term.is_empty() {
                out.push(term);
            }
        }
        out
    }
}

/// Bidirectional controls, zero-width characters, the word joiner, the byte
/// order mark and the soft hyphen: format characters that change no word.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// How specifically a configured namespace key names `namespace`: an exact
/// name beats every pattern, and a pattern (`support-*`: a prefix then `*`)
/// matches the namespaces it starts, a longer prefix beating a shorter one.
/// `None` when the key does not name it. Search settings and analyzers pick
/// their overrides by this one rule.
pub fn namespace_match(key: &str, namespace: &str) -> Option<usize> {
    match key.strip_suffix('*') {
        Some(prefix) => namespace.starts_with(prefix).then_some(prefix.len()),
        None => (key == namespace).then_some(usize::MAX),
    }
}

/// The value of the key that names `namespace` most specifically
/// ([`namespace_match`]), with the key.
pub fn by_namespace<'a, V>(
    entries: impl IntoIterator<Item = (&'a String, &'a V)>,
    namespace: &str,
) -> Option<(&'a String, &'a V)> {
    entries
        .into_iter()
        .filter_map(|(k, v)| namespace_match(k, namespace).map(|n| (n, k, v)))
        .max_by_key(|(n, _, _)| *n)
        .map(|(_, k, v)| (k, v))
}

/// The analyzer of each namespace: one default plus per-namespace overrides.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextConfig {
    /// For namespaces without their own settings.
    #[serde(flatten)]
    pub default: AnalyzerSettings,
    /// Per-namespace settings, by name or pattern ([`namespace_match`]).
    pub namespaces: std::collections::BTreeMap<String, AnalyzerSettings>,
}

/// Analyzers built from a [`TextConfig`], one per distinct setting, and
/// the ones set for a namespace at run time, which beat the configured ones.
#[derive(Debug)]
pub struct Analyzers {
    default: Analyzer,
    namespaces: HashMap<String, Analyzer>,
    set: HashMap<String, Analyzer>,
}

impl Analyzers {
    /// Builds every analyzer `config` names.
    pub fn new(config: &TextConfig) -> Self {
        Self {
            default: Analyzer::new(config.default),
            namespaces: config
                .namespaces
                .iter()
                .map(|(ns, s)| (ns.clone(), Analyzer::new(*s)))
                .collect(),
            set: HashMap::new(),
        }
    }

    /// Sets `namespace`'s analyzer at run time (`None`: back to the configured one).
    pub fn set(&mut self, namespace: &str, settings: Option<AnalyzerSettings>) {
        match settings {
            Some(s) => {
                self.set.insert(namespace.to_owned(), Analyzer::new(s));
            }
            None => {
                self.set.remove(namespace);
            }
        }
    }

    /// The analyzer of `namespace`: the one set at run time, else its own
    /// configured one, else its pattern's, else the default.
    pub fn of(&self, namespace: &str) -> &Analyzer {
        if let Some(a) = self.set.get(namespace) {
            return a;
        }
        if let Some(a) = self.namespaces.get(namespace) {
            return a;
        }
        by_namespace(&self.namespaces, namespace).map_or(&self.default, |(_, a)| a)
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::*;

    #[test]
    fn exact_names_beat_patterns_and_longer_prefixes_beat_shorter() {
        let m: std::collections::BTreeMap<String, u8> = [
            ("support-*".to_owned(), 1),
            ("support-fr-*".to_owned(), 2),
            ("support-fr-paris".to_owned(), 3),
            ("*".to_owned(), 4),
        ]
        .into();
        let pick = |ns: &str| by_namespace(&m, ns).map(|(_, v)| *v);
        assert_eq!(pick("support-fr-paris"), Some(3));
        assert_eq!(pick("support-fr-lyon"), Some(2));
        assert_eq!(pick("support-de"), Some(1));
        assert_eq!(pick("sales"), Some(4));
        let exact_only: std::collections::BTreeMap<String, u8> = [("a".to_owned(), 1)].into();
        assert_eq!(by_namespace(&exact_only, "ab"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_format_characters_do_not_hide_a_word() {
        let a = Analyzer::new(AnalyzerSettings::default());
        for text in [
            "\u{202e}evil\u{202c}",
            "e\u{200b}vil",
            "\u{feff}evil",
            "ev\u{00ad}il",
            "\u{2066}evil\u{2069}",
        ] {
            assert_eq!(a.terms(text), a.terms("evil"), "{text:?}");
        }
    }

    #[test]
    fn every_language_has_stop_words_and_a_stemmer() {
        for language in Language::ALL {
            let a = Analyzer::new(AnalyzerSettings {
                language,
                stemming: true,
                stop_words: true,
            });
            assert!(!a.stop_words.is_empty(), "{language:?} has no stop words");
            assert!(a.stemmer.is_some());
        }
    }

    #[test]
    fn english_words_are_lowercased_stemmed_and_stop_words_dropped() {
        let a = Analyzer::new(AnalyzerSettings::default());
        assert_eq!(
            a.terms("The Runners were RUNNING to Zürich, weren't they?"),
            vec!["runner", "run", "zürich"]
        );
    }

    #[test]
    fn without_stemming_or_stop_words_words_stay_whole() {
        let a = Analyzer::new(AnalyzerSettings {
            language: Language::English,
            stemming: false,
            stop_words: false,
        });
        assert_eq!(a.terms("The runners"), vec!["the", "runners"]);
    }

    #[test]
    fn punctuation_operators_and_quotes_are_not_syntax() {
        let a = Analyzer::new(AnalyzerSettings::default());
        assert_eq!(a.terms("\"AND\" OR -NOT* (x) :: ''"), vec!["x"]);
        assert!(a.terms("").is_empty());
        assert!(a.terms("the of and").is_empty());
        assert_eq!(a.terms("a b"), vec!["b"]);
    }

    #[test]
    fn overlong_terms_are_dropped() {
        let a = Analyzer::new(AnalyzerSettings::default());
        let long = "x".repeat(MAX_TERM_BYTES + 1);
        assert_eq!(a.terms(&format!("{long} kept")), vec!["kept"]);
    }

    /// English by default, French in namespace `fr`.
    fn with_french() -> TextConfig {
        let mut config = TextConfig::default();
        config.namespaces.insert(
            "fr".into(),
            AnalyzerSettings {
                language: Language::French,
                ..AnalyzerSettings::default()
            },
        );
        config
    }

    #[test]
    fn namespaces_get_their_own_analyzer() {
        let a = Analyzers::new(&with_french());
        assert_eq!(a.of("fr").settings().language, Language::French);
        assert_eq!(a.of("other").settings().language, Language::English);
        assert_eq!(a.of("fr").terms("les chevaux"), vec!["cheval"]);
    }

    #[test]
    fn an_analyzer_set_at_run_time_beats_the_configured_one_until_unset() {
        let mut a = Analyzers::new(&with_french());
        let plain = AnalyzerSettings {
            stemming: false,
            ..AnalyzerSettings::default()
        };
        a.set("fr", Some(plain));
        assert_eq!(a.of("fr").settings(), plain);
        assert_eq!(a.of("fr").terms("running"), vec!["running"]);
        a.set("fr", None);
        assert_eq!(a.of("fr").settings().language, Language::French);
    }
}
