//! `retrieval-eval`: loads a retrieval-quality set into a running memory
//! server through its HTTP API and prints recall@1/5/10/25 and MRR for the
//! vector, keyword and hybrid search modes. The memories it loaded are
//! deleted again afterwards unless `--keep` is given.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use memory_client::MemoryClient;
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
    /// Leave the loaded memories in the server (to look at them afterwards).
    #[arg(long)]
    keep: bool,
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
    let report = eval::evaluate(&client, &set, &namespace, &keys, &MODES).await;
    if !args.keep {
        eval::unload(&client, &keys)
            .await
            .map_err(|e| format!("deleting the loaded memories from {namespace}: {e}"))?;
    }
    let report = report.map_err(|e| format!("searching: {e}"))?;
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
