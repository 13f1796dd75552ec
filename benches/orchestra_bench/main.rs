//! `orchestra-bench`: the operators' load bench for memory-server (REST and
//! MCP) and the orchestrator.
//!
//! ```text
//! orchestra-bench run benches/scenarios/smoke.toml --url URL [--key KEY]
//!     [--json OUT.json] [--html OUT.html] [--slo 'p95<200ms,errors<0.1%']
//! orchestra-bench compare A.json B.json [--html OUT.html]
//! orchestra-bench merge A.json B.json ... --json OUT.json [--html OUT.html]
//! orchestra-bench replay --url URL --bodies BODIES.jsonl [--concurrency 8] [--secs 10]
//! ```
//!
//! How it is put together, outside in:
//! - [`scenario`]: the TOML scenario file, checked on read;
//! - [`run`]: set-up, warm-up and the measured load, open or closed loop,
//!   with [`schedule`] (the intended send times of an open loop);
//! - [`target`]: the wire format of each service ([`target::rest`],
//!   [`target::mcp`], [`target::orchestrator`]), with [`auth`] (API key,
//!   Google identity token) and [`dataset`] (what is stored and asked);
//! - [`record`]: HDR histograms as the run goes; [`report`]: the JSON
//!   report with serialised histograms, and [`report::merge`];
//! - [`slo`] gates, [`compare`], the [`html`] report, the [`progress`] line,
//!   and [`safety`] (loopback unless `--target-allow`);
//! - [`replay`]: request bodies written beforehand, sent as they are to any
//!   JSON API (the harness that measures us against Chroma drives both).
//!
//! Docs: docs/benchmarks.md ("orchestra-bench") and docs/operations.md
//! ("Load test before promotion").

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

#[path = "../ann_bench/dataset.rs"]
#[allow(dead_code)] // the generator is ann-bench's; this binary only reads
mod ann_dataset;
mod auth;
mod compare;
mod dataset;
mod html;
mod progress;
mod record;
mod replay;
mod report;
mod run;
mod safety;
mod scenario;
mod schedule;
mod slo;
mod target;
#[path = "../common/text.rs"]
mod text;

use report::Report;
use scenario::Scenario;

/// Load bench for memory-server and the orchestrator.
#[derive(Parser, Debug)]
#[command(name = "orchestra-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a scenario against a service.
    Run(RunArgs),
    /// Compares two reports (B against the baseline A).
    Compare {
        /// The baseline report.
        a: PathBuf,
        /// The report compared with it.
        b: PathBuf,
        /// Also write the comparison as HTML with plots.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Merges reports of one scenario run at once from several machines.
    Merge {
        /// The reports.
        #[arg(required = true, num_args = 1..)]
        reports: Vec<PathBuf>,
        /// Where to write the merged report.
        #[arg(long)]
        json: PathBuf,
        /// Also write it as HTML.
        #[arg(long)]
        html: Option<PathBuf>,
        /// SLO gates checked on the merged figures (exit code 2 when missed).
        #[arg(long, num_args = 0..=1, default_missing_value = slo::DEFAULT)]
        slo: Option<String>,
    },
    /// POSTs request bodies written beforehand at a fixed concurrency (any JSON API).
    Replay(replay::ReplayArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The scenario file (benches/scenarios/*.toml).
    scenario: PathBuf,
    /// Base URL of the service.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key (sent as `Authorization: Bearer`); also read from ORCHESTRA_BENCH_KEY.
    #[arg(long, env = "ORCHESTRA_BENCH_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Also send a Google identity token (Cloud Run behind IAM), from gcloud or the metadata server.
    #[arg(long, value_enum)]
    identity_token: Option<auth::IdentitySource>,
    /// Hosts other than loopback this run may load (comma-separated, exact names).
    #[arg(long, value_delimiter = ',')]
    target_allow: Vec<String>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// SLO gates (exit code 2 when missed); `--slo` alone means `p95<200ms,errors<0.1%`.
    #[arg(long, num_args = 0..=1, default_missing_value = slo::DEFAULT)]
    slo: Option<String>,
    /// Override the scenario's measured seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Run open-loop at this fixed rate (requests per second), whatever the scenario's load.
    #[arg(long)]
    rate: Option<f64>,
    /// Override the scenario's concurrency.
    #[arg(long)]
    concurrency: Option<usize>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(dispatch(cli)),
        Err(e) => Err(format!("tokio runtime: {e}")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("orchestra-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Run(args) => run_command(args).await,
        Command::Replay(args) => replay::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Compare { a, b, html } => {
            let (ra, rb) = (read(&a)?, read(&b)?);
            let rows = compare::rows(&ra, &rb);
            print!(
                "A: {}\nB: {}\n{}",
                a.display(),
                b.display(),
                compare::text(&rows)
            );
            if let Some(p) = html {
                write(&p, &html::compare(&ra, &rb, &rows))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge {
            reports,
            json,
            html,
            slo,
        } => {
            let terms = slo.as_deref().map(slo::parse).transpose()?;
            let loaded = reports
                .iter()
                .map(|p| read(p).map(|r| (p.display().to_string(), r)))
                .collect::<Result<Vec<_>, _>>()?;
            let merged = report::merge(&loaded).map_err(|e| e.to_string())?;
            finish(&merged, Some(&json), html.as_deref(), terms.as_deref())
        }
    }
}

fn read(p: &Path) -> Result<Report, String> {
    Report::read(p).map_err(|e| e.to_string())
}

fn write(p: &Path, text: &str) -> Result<(), String> {
    std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
}

async fn run_command(args: RunArgs) -> Result<ExitCode, String> {
    let mut scenario = Scenario::load(&args.scenario).map_err(|e| e.to_string())?;
    if let Some(d) = args.duration {
        scenario.load.duration_secs = Some(d);
    }
    if let Some(r) = args.rate {
        scenario.load.mode = scenario::LoadMode::Open;
        scenario.load.rate = Some(r);
        scenario.load.steps = None;
        scenario.load.ramp = None;
    }
    if let Some(c) = args.concurrency {
        scenario.load.concurrency = c;
    }
    scenario
        .check()
        .map_err(|e| format!("{}: {e}", args.scenario.display()))?;
    safety::check_target(&args.url, &args.target_allow)?;
    let terms = args.slo.as_deref().map(slo::parse).transpose()?;
    let mut credentials = auth::Credentials::key(args.key.clone());
    if let Some(source) = args.identity_token {
        credentials = credentials.with_identity(source, &args.url).await?;
    }

    // First Ctrl-C: stop sending, finish, and write a partial report; second: quit now.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\norchestra-bench: stopping (Ctrl-C again to quit now); the report will be partial"
            );
            flag.store(true, Ordering::Relaxed);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let progress = progress::Progress::new(args.quiet);
    let report = run::run(&scenario, &args.url, credentials, stop, progress).await?;
    finish(
        &report,
        args.json.as_deref(),
        args.html.as_deref(),
        terms.as_deref(),
    )
}

/// Prints the summary, writes the files, and checks the gates.
fn finish(
    r: &Report,
    json: Option<&Path>,
    html_out: Option<&Path>,
    terms: Option<&[slo::Term]>,
) -> Result<ExitCode, String> {
    let verdicts = terms.map(|t| slo::check(t, r)).unwrap_or_default();
    print!("{}", r.text());
    for v in &verdicts {
        println!(
            "SLO {:<24} {:>12} {}",
            v.objective,
            v.measured.map_or("missing".into(), |m| format!("{m:.4}")),
            if v.pass { "pass" } else { "FAIL" }
        );
    }
    if let Some(p) = json {
        let text = serde_json::to_string_pretty(r).map_err(|e| e.to_string())?;
        write(p, &text)?;
    }
    if let Some(p) = html_out {
        write(p, &html::report(r, &verdicts))?;
    }
    Ok(if verdicts.iter().all(|v| v.pass) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
