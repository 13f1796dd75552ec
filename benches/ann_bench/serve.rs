//! `--serve`: one graph (`--backend`, usearch unless named), searched in slices another process asks
//! for, so a harness can interleave our searches with another library's
//! query by query (`benches/versus_hnswlib.py --paired`): on a machine whose
//! speed moves from second to second, both then run in the same seconds.
//!
//! The protocol, one line each way, on stdin and stdout:
//!
//! ```text
//! ann-bench: ready N DIM              (after the build)
//! harness:   EF FROM TO              (search queries FROM..TO at width EF)
//! ann-bench: SECONDS HITS            (time spent searching only; hits among the exact top 10)
//! ```
//!
//! End of input ends the process. A bad line is answered `error: ...` and
//! the next one read.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use vector_index::synthetic::hits_at;
use vector_index::{BackendKind, Collection, Query, Strategy};

use super::{Args, Error, build, config, dataset};

/// Builds the graph of `args.quantization`, then answers slices until stdin closes.
pub(super) fn run(args: &Args, dir: &Path) -> Result<(), Error> {
    let ds = dataset::load(dir)?;
    let (dim, n) = (ds.meta.dim, ds.meta.n_base);
    let kind = match args.backend.as_str() {
        "all" => BackendKind::Usearch,
        name => name.parse()?,
    };
    let (c, secs) = build(config(args, kind, dim, n), &ds.base, dim, 2);
    c.wait_idle();
    eprintln!("ann-bench: built in {secs:.1} s on 2 threads");
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {n} {dim}")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        match parse(&line, ds.meta.n_queries) {
            Ok((ef, from, to)) => {
                let (secs, hits) = slice(&c, &ds, ef, from, to);
                writeln!(out, "{secs:.9} {hits}")?;
            }
            Err(e) => writeln!(out, "error: {e}")?,
        }
        out.flush()?;
    }
    Ok(())
}

/// `EF FROM TO`, with FROM < TO ≤ the number of queries.
fn parse(line: &str, n_queries: usize) -> Result<(usize, usize, usize), String> {
    let fields: Vec<usize> = line
        .split_whitespace()
        .map(|f| f.parse().map_err(|_| format!("not a number: {f:?}")))
        .collect::<Result<_, _>>()?;
    match fields[..] {
        [ef, from, to] if ef > 0 && from < to && to <= n_queries => Ok((ef, from, to)),
        [_, _, _] => Err(format!(
            "want EF > 0 and FROM < TO <= {n_queries}, got {line:?}"
        )),
        _ => Err(format!("want `EF FROM TO`, got {line:?}")),
    }
}

/// Seconds spent in the searches of queries `from..to`, and how many of their
/// exact top 10 they found.
fn slice(c: &Collection, ds: &dataset::Dataset, ef: usize, from: usize, to: usize) -> (f64, usize) {
    let dim = ds.meta.dim;
    let mut secs = 0.0;
    let mut found = Vec::with_capacity(to - from);
    for j in from..to {
        let query = Query::new(ds.queries[j * dim..(j + 1) * dim].to_vec(), 10)
            .ef(ef)
            .strategy(Strategy::Graph);
        let t = Instant::now();
        let r = c.search(&query).expect("search");
        secs += t.elapsed().as_secs_f64();
        found.push(r.hits.iter().map(|h| h.id.as_u128() as u32).collect());
    }
    (secs, hits_at(10, &found, &ds.gt[from..to]).0)
}
