//! The on-disk dataset format and the synthetic generator that writes it.
//!
//! A dataset directory holds `meta.json` (`dim`, `n_base`, `n_queries`, `gt_k`,
//! `metric`), `base.f32` and `queries.f32` (little-endian f32, row-major) and
//! `gt.i32` (little-endian i32, `n_queries x gt_k` base indices, nearest first).

use std::fs;
use std::path::Path;

use providers::embed::local::{LocalEmbedder, LocalSettings, MINILM_DIMS};
use providers::embed::{BuiltinEmbedder, Embedder, Purpose};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use vector_index::synthetic::{clustered, ground_truth};

use crate::text;

/// `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub dim: usize,
    pub n_base: usize,
    pub n_queries: usize,
    pub gt_k: usize,
    pub metric: String,
}

/// A loaded dataset.
pub struct Dataset {
    pub meta: Meta,
    pub base: Vec<f32>,
    pub queries: Vec<f32>,
    pub gt: Vec<Vec<u32>>,
}

type Error = Box<dyn std::error::Error>;

fn read_f32(path: &Path, expected: usize) -> Result<Vec<f32>, Error> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() != expected * 4 {
        return Err(format!(
            "{}: expected {} float32 values, found {} bytes",
            path.display(),
            expected,
            bytes.len()
        )
        .into());
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Reads and checks a dataset directory.
pub fn load(dir: &Path) -> Result<Dataset, Error> {
    let meta_path = dir.join("meta.json");
    let meta: Meta = serde_json::from_slice(
        &fs::read(&meta_path).map_err(|e| format!("{}: {e}", meta_path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", meta_path.display()))?;
    if meta.metric != "cosine" {
        return Err(format!("metric `{}` is not supported; use cosine", meta.metric).into());
    }
    let base = read_f32(&dir.join("base.f32"), meta.n_base * meta.dim)?;
    let queries = read_f32(&dir.join("queries.f32"), meta.n_queries * meta.dim)?;
    let gt_path = dir.join("gt.i32");
    let gt_bytes = fs::read(&gt_path).map_err(|e| format!("{}: {e}", gt_path.display()))?;
    if gt_bytes.len() != meta.n_queries * meta.gt_k * 4 {
        return Err(format!("{}: wrong size for n_queries x gt_k", gt_path.display()).into());
    }
    let mut gt = Vec::with_capacity(meta.n_queries);
    for row in gt_bytes.chunks_exact(meta.gt_k * 4) {
        let ids: Result<Vec<u32>, _> = row
            .chunks_exact(4)
            .map(|b| u32::try_from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect();
        gt.push(ids.map_err(|_| format!("{}: negative index", gt_path.display()))?);
    }
    Ok(Dataset {
        meta,
        base,
        queries,
        gt,
    })
}

/// Generates a clustered dataset with exact ground truth and writes it to `dir`.
/// Which generated data to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Corpus {
    /// Gaussian clusters around random unit centres (any dimension).
    Clustered,
    /// The load bench's memory texts and queries, through the built-in embedder.
    MemoryText,
    /// The same texts through all-MiniLM-L6-v2 (`--model-dir`; 384 dimensions):
    /// real text embeddings, with the anisotropy hashing vectors lack.
    MinilmText,
}

/// Generates a dataset of `n` base vectors and `n_queries` queries into `dir`.
pub fn generate(
    dir: &Path,
    corpus: Corpus,
    n: usize,
    n_queries: usize,
    dim: usize,
    seed: u64,
    model_dir: Option<&Path>,
) -> Result<(), Error> {
    let (base, queries) = match corpus {
        Corpus::Clustered => {
            let clusters = (n as f64).sqrt() as usize;
            // Queries come from the same clusters as the base (one draw, split), as
            // real queries come from the topics the memories are about.
            let mut base = clustered(n + n_queries, dim, clusters, 0.5, seed);
            let queries = base.split_off(n * dim);
            (base, queries)
        }
        Corpus::MemoryText => {
            let embedder = BuiltinEmbedder::new(dim);
            let mut rng = StdRng::seed_from_u64(seed);
            let base = (0..n)
                .flat_map(|_| embedder.vector(&text::memory(&mut rng)))
                .collect();
            let queries = (0..n_queries)
                .flat_map(|_| embedder.vector(&text::query(&mut rng)))
                .collect();
            (base, queries)
        }
        Corpus::MinilmText => {
            let model_dir = model_dir.ok_or("--corpus minilm-text needs --model-dir")?;
            if dim != MINILM_DIMS {
                return Err(format!("--corpus minilm-text gives {MINILM_DIMS} dimensions").into());
            }
            let mut rng = StdRng::seed_from_u64(seed);
            let base: Vec<String> = (0..n).map(|_| text::memory(&mut rng)).collect();
            let queries: Vec<String> = (0..n_queries).map(|_| text::query(&mut rng)).collect();
            (
                minilm(model_dir, &base, Purpose::Document)?,
                minilm(model_dir, &queries, Purpose::Query)?,
            )
        }
    };
    let gt_k = 100.min(n);
    let gt = ground_truth(&base, &queries, dim, gt_k);
    fs::create_dir_all(dir)?;
    let floats = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    fs::write(dir.join("base.f32"), floats(&base))?;
    fs::write(dir.join("queries.f32"), floats(&queries))?;
    let gt_bytes: Vec<u8> = gt
        .iter()
        .flat_map(|row| (0..gt_k).map(move |i| row.get(i).map_or(-1, |x| *x as i32)))
        .flat_map(i32::to_le_bytes)
        .collect();
    fs::write(dir.join("gt.i32"), gt_bytes)?;
    let meta = Meta {
        dim,
        n_base: n,
        n_queries,
        gt_k,
        metric: "cosine".into(),
    };
    fs::write(dir.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
    Ok(())
}

/// `texts` embedded by the local MiniLM model, flattened (every core; a
/// progress line per 10,000 texts, as 100,000 take minutes).
fn minilm(model_dir: &Path, texts: &[String], purpose: Purpose) -> Result<Vec<f32>, Error> {
    let embedder = LocalEmbedder::load(&LocalSettings {
        model_dir: model_dir.to_owned(),
        threads: 0,
        batch_size: 256,
        cache_entries: 0,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut out = Vec::with_capacity(texts.len() * MINILM_DIMS);
    for (i, chunk) in texts.chunks(2_000).enumerate() {
        for v in runtime.block_on(embedder.embed(chunk, purpose))? {
            out.extend(v);
        }
        if (i + 1) % 5 == 0 {
            eprintln!("  embedded {} of {}", (i + 1) * 2_000, texts.len());
        }
    }
    Ok(out)
}
