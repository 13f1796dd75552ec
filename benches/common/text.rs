//! The texts the benches store and search for: short notes drawn from a small
//! work vocabulary, each ending in a number so that no two are identical.
//! `load-bench` sends them to the server; `ann-bench --corpus memory-text`
//! embeds them with the built-in embedder, so both measure the same data.

use rand::Rng;
use rand::rngs::StdRng;

/// The vocabulary.
const WORDS: &[&str] = &[
    "deploy",
    "staging",
    "production",
    "invoice",
    "customer",
    "alice",
    "bob",
    "meeting",
    "report",
    "budget",
    "travel",
    "lisbon",
    "tea",
    "coffee",
    "database",
    "password",
    "rotation",
    "incident",
    "latency",
    "review",
    "contract",
    "renewal",
    "march",
    "friday",
    "roadmap",
    "pricing",
    "churn",
    "onboarding",
    "ticket",
    "escalation",
    "refund",
    "shipping",
    "warehouse",
    "forecast",
    "quarter",
    "hiring",
    "interview",
    "feedback",
    "release",
    "rollback",
    "canary",
    "alert",
    "dashboard",
    "cache",
    "redis",
    "vector",
    "search",
    "memory",
    "agent",
    "planner",
];

/// `words` vocabulary words, `today` or `later`, then `#<number>`.
fn sentence(rng: &mut StdRng, words: usize) -> String {
    let mut s: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    s.push(if rng.random_bool(0.5) {
        "today"
    } else {
        "later"
    });
    let n: u32 = rng.random_range(0..1_000_000);
    format!("{} #{n}", s.join(" "))
}

/// A memory's text: eight words.
pub fn memory(rng: &mut StdRng) -> String {
    sentence(rng, 8)
}

/// A search query: two to four words.
pub fn query(rng: &mut StdRng) -> String {
    let words = rng.random_range(2..5);
    sentence(rng, words)
}
