//! `--paired`: several graphs in one process, their searches
//! interleaved query by query (each query asks every graph, in an order that
//! turns from query to query), so a machine whose speed moves from second to
//! second slows each of them alike. Prints each one's QPS and recall, and its
//! speed against the first, per search width: the medians over
//! `--paired-rounds` rounds, and the spread of the per-round ratios.
//!
//! A graph is named by its quantization and, where it departs from the
//! command line's, its `ef_construction`, a search width of its own and its
//! backend (`f16:efc=100:ef=96`, `f16:backend=graph`; usearch by default),
//! so two settings of the defaults, or two backends, can be weighed against
//! each other at the recall each reaches.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use serde_json::json;
use vector_index::synthetic::recall_at;
use vector_index::{BackendKind, Collection, Quantization, Query, Strategy};

use super::{Args, Error, build, config, dataset};

/// One graph of `--paired`: `QUANT[:efc=N][:ef=N][:backend=NAME]`.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    /// As written on the command line.
    name: String,
    quantization: Quantization,
    /// Its own `ef_construction`, else `--ef-construction`.
    ef_construction: Option<usize>,
    /// Its own search width, used whatever `--ef` the others are at.
    ef: Option<usize>,
    backend: BackendKind,
}

impl FromStr for Spec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(':');
        let quantization = parts
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|e| format!("{s}: {e}"))?;
        let mut spec = Spec {
            name: s.to_owned(),
            quantization,
            ef_construction: None,
            ef: None,
            backend: BackendKind::Usearch,
        };
        for part in parts {
            let number = |v: &str| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{s}: `{part}` wants a number above 0"))
            };
            match part.split_once('=') {
                Some(("efc", v)) => spec.ef_construction = Some(number(v)?),
                Some(("ef", v)) => spec.ef = Some(number(v)?),
                Some(("backend", v)) => {
                    spec.backend = v.parse().map_err(|e| format!("{s}: {e}"))?
                }
                _ => {
                    return Err(format!(
                        "{s}: want QUANT[:efc=N][:ef=N][:backend=NAME], not `{part}`"
                    ));
                }
            }
        }
        Ok(spec)
    }
}

/// Builds one graph per spec of `args.paired`, then measures them side by side.
pub(super) fn run(args: &Args, dir: &Path) -> Result<(), Error> {
    let ds = dataset::load(dir)?;
    let (dim, n) = (ds.meta.dim, ds.meta.n_base);
    let mut systems: Vec<(&Spec, Collection)> = Vec::new();
    for spec in &args.paired {
        let mut one = args.clone();
        one.quantization = spec.quantization;
        one.ef_construction = spec.ef_construction.unwrap_or(args.ef_construction);
        let (c, secs) = build(config(&one, spec.backend, dim, n), &ds.base, dim, 2);
        c.wait_idle();
        println!("{}: built in {secs:.1} s on 2 threads", spec.name);
        systems.push((spec, c));
    }
    let mut json = match &args.json {
        Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
        None => None,
    };
    println!(
        "\n== paired: {n} x {dim}, {} queries, M={}, ef_construction={}, {} rounds, median QPS (recall@10), speed against {}",
        ds.meta.n_queries, args.m, args.ef_construction, args.paired_rounds, systems[0].0.name
    );
    for &ef in &args.ef {
        // Seconds spent per round and system, and each system's answers (first round).
        let mut secs = vec![vec![0f64; systems.len()]; args.paired_rounds];
        let mut found = vec![Vec::with_capacity(ds.meta.n_queries); systems.len()];
        for (round, spent) in secs.iter_mut().enumerate() {
            for (j, row) in ds.queries.chunks_exact(dim).enumerate() {
                let turn = (j + round) % systems.len();
                for s in (0..systems.len()).map(|i| (i + turn) % systems.len()) {
                    let query = Query::new(row.to_vec(), 10)
                        .ef(systems[s].0.ef.unwrap_or(ef))
                        .strategy(Strategy::Graph);
                    let t = Instant::now();
                    let r = systems[s].1.search(&query).expect("search");
                    spent[s] += t.elapsed().as_secs_f64();
                    if round == 0 {
                        found[s].push(r.hits.iter().map(|h| h.id.as_u128() as u32).collect());
                    }
                }
            }
        }
        let mut line = format!("ef {ef:>4}:");
        for (s, (spec, _)) in systems.iter().enumerate() {
            let name = &spec.name;
            let recall = recall_at(10, &found[s], &ds.gt);
            let qps = median(
                secs.iter()
                    .map(|r| ds.meta.n_queries as f64 / r[s])
                    .collect(),
            );
            let ratios: Vec<f64> = secs.iter().map(|r| r[0] / r[s]).collect();
            let (low, high) = spread(&ratios);
            let ratio = median(ratios.clone());
            line += &format!("  {name} {qps:>6.0} ({recall:.4})");
            if s > 0 {
                line += &format!(" {ratio:.2}x [{low:.2}-{high:.2}]");
            }
            if let Some(f) = json.as_mut() {
                writeln!(
                    f,
                    "{}",
                    json!({
                        "paired": true, "system": name, "backend": spec.backend.name(),
                        "quantization": format!("{:?}", spec.quantization).to_lowercase(),
                        "ef": spec.ef.unwrap_or(ef), "n": n, "dim": dim, "m": args.m,
                        "ef_construction": spec.ef_construction.unwrap_or(args.ef_construction),
                        "recall_at_10": recall, "qps_median": qps,
                        "speed_vs_first_median": ratio, "speed_vs_first_rounds": ratios,
                    })
                )?;
            }
        }
        println!("{line}");
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn spread(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}
