//! `retrieval-eval`: loads a retrieval-quality set into a running memory
//! server through its HTTP API and prints recall@1/5/10/25 and MRR for the
//! vector, keyword and hybrid search modes. The memories it loaded are
//! deleted again afterwards unless `--keep` is given.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use memory_client::{
    Bm25Params, ContextWindow, Feedback, Fusion, MemoryClient, QueryTime, SearchMode,
};
use retrieval_eval::{self as eval, EvalSet, MODES};

/// Measures retrieval quality of a memory server on a question set.
#[derive(Debug, Parser)]
#[command(name = "retrieval-eval")]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key, when the server requires one.
    #[arg(long, env = "ORCHESTRA_API_KEY")]
    key: Option<String>,
    /// The set (JSON; see eval/retrieval-set.json).
    #[arg(long, default_value = "eval/retrieval-set.json")]
    set: PathBuf,
    /// Namespace to load into (default: the set's, with a unique suffix).
    #[arg(long)]
    namespace: Option<String>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// Leave the loaded memories in the server (to look at them afterwards).
    #[arg(long)]
    keep: bool,
    /// Modes to evaluate, comma-separated [default: vector,keyword,hybrid].
    #[arg(long, value_delimiter = ',', value_parser = parse_mode)]
    modes: Vec<SearchMode>,
    /// Hybrid fusion: `weighted` or `rrf` [default: the server's].
    #[arg(long, value_parser = parse_fusion)]
    fusion: Option<Fusion>,
    /// Weighted fusion's vector share [default: the server's].
    #[arg(long)]
    alpha: Option<f32>,
    /// Return each hit's neighbouring turns: BEFORE,AFTER (e.g. 1,1).
    #[arg(long, value_name = "BEFORE,AFTER", value_parser = parse_window)]
    context_window: Option<ContextWindow>,
    /// At most this many hits per session.
    #[arg(long)]
    max_per_session: Option<u32>,
    /// A time named in the question: off, boost or filter [default: the server's].
    #[arg(long, value_parser = parse_query_time)]
    query_time: Option<QueryTime>,
    /// Pseudo-relevance feedback: DOCS,TERMS,WEIGHT (e.g. 3,5,0.3).
    #[arg(long, value_name = "DOCS,TERMS,WEIGHT", value_parser = parse_feedback)]
    feedback: Option<Feedback>,
    /// Entity-aware scoring's share of the score, 0 to 1 [default: the server's].
    #[arg(long)]
    entity_weight: Option<f32>,
    /// BM25 parameters: K1,B (e.g. 1.2,0.75) [default: the namespace's].
    #[arg(long, value_name = "K1,B", value_parser = parse_bm25)]
    bm25: Option<Bm25Params>,
}

fn parse_bm25(s: &str) -> Result<Bm25Params, String> {
    let (k1, b) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}`: give K1,B, e.g. 1.2,0.75"))?;
    let n = |x: &str| {
        x.trim()
            .parse::<f32>()
            .map_err(|_| format!("`{x}` is not a number"))
    };
    Ok(Bm25Params {
        k1: n(k1)?,
        b: n(b)?,
    })
}

fn parse_feedback(s: &str) -> Result<Feedback, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [docs, terms, weight] = parts.as_slice() else {
        return Err(format!("`{s}`: give DOCS,TERMS,WEIGHT, e.g. 3,5,0.3"));
    };
    let bad = |x: &str| format!("`{x}` is not a number");
    Ok(Feedback {
        docs: docs.parse().map_err(|_| bad(docs))?,
        terms: terms.parse().map_err(|_| bad(terms))?,
        weight: weight.parse().map_err(|_| bad(weight))?,
    })
}

fn parse_query_time(s: &str) -> Result<QueryTime, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}`: use off, boost or filter"))
}

fn parse_mode(s: &str) -> Result<SearchMode, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}`: use vector, keyword or hybrid"))
}

fn parse_fusion(s: &str) -> Result<Fusion, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}`: use weighted or rrf"))
}

fn parse_window(s: &str) -> Result<ContextWindow, String> {
    let (before, after) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}`: give BEFORE,AFTER, e.g. 1,1"))?;
    let n = |x: &str| {
        x.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{x}` is not a number of turns"))
    };
    Ok(ContextWindow {
        before: n(before)?,
        after: n(after)?,
    })
}

async fn run(args: Args) -> Result<String, String> {
    let bytes = std::fs::read(&args.set).map_err(|e| format!("{}: {e}", args.set.display()))?;
    let set: EvalSet =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", args.set.display()))?;
    let mut client = MemoryClient::new(&args.url).map_err(|e| e.to_string())?;
    if let Some(k) = &args.key {
        client = client.with_key(k);
    }
    let namespace = args.namespace.unwrap_or_else(|| {
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        format!("{}-{}", set.namespace, &suffix[suffix.len() - 8..])
    });
    let keys = eval::load(&client, &set, &namespace)
        .await
        .map_err(|e| format!("loading the set: {e}"))?;
    let modes = if args.modes.is_empty() {
        MODES.to_vec()
    } else {
        args.modes.clone()
    };
    let tuning = eval::Tuning {
        fusion: args.fusion,
        alpha: args.alpha,
        context_window: args.context_window,
        max_per_session: args.max_per_session,
        query_time: args.query_time,
        feedback: args.feedback,
        bm25: args.bm25,
        entity_weight: args.entity_weight,
    };
    let report = eval::evaluate(&client, &set, &namespace, &keys, &modes, &tuning).await;
    if !args.keep {
        eval::unload(&client, &keys)
            .await
            .map_err(|e| format!("deleting the loaded memories from {namespace}: {e}"))?;
    }
    let report = report.map_err(|e| format!("searching: {e}"))?;
    if let Some(path) = &args.json_out {
        let json = serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())
    } else {
        Ok(report.table())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("retrieval-eval: {e}");
            ExitCode::FAILURE
        }
    }
}
