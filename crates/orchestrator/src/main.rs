//! `orchestrator`: runs the agents of `config/agents.toml` behind the
//! orchestration API, with the settings in `config/orchestrator.toml`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use orchestrator::config::Config;

/// Where settings come from, shown after the options in `--help`.
const SETTINGS_HELP: &str = "\
Settings, later wins: built-in defaults, <config-dir>/orchestrator.toml,
<config-dir>/orchestrator.<env>.toml, then environment variables
ORCHESTRA__<SECTION>__<KEY> (e.g. ORCHESTRA__MEMORY__URL=http://127.0.0.1:8080,
ORCHESTRA__STORAGE__BACKEND=redis), then PORT for server.port.
Agents and models: <config-dir>/agents.toml (agents.file).
Without flags it binds 127.0.0.1:8090, keeps threads and runs in ./data, and
runs the offline scripted model. API reference: /openapi.json.";

/// The AI Orchestra orchestrator.
#[derive(Debug, Parser)]
#[command(name = "orchestrator", version, after_help = SETTINGS_HELP)]
struct Cli {
    /// Directory holding orchestrator.toml and agents.toml [default: config]
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Environment whose file overrides the defaults (dev, staging, prod).
    #[arg(long, env = "ORCHESTRA_ENV")]
    env: Option<String>,
    /// Check the configuration and the agents file, print the agents, and exit.
    #[arg(long)]
    check: bool,
}

/// mimalloc instead of the system allocator: a request's many small,
/// short-lived buffers (JSON, records, HTTP) cost glibc malloc's free-list
/// upkeep about a sixth of the CPU under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("orchestrator: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = match cli.config_dir {
        Some(dir) if !dir.is_dir() => {
            return fail(format!("--config-dir {}: no such directory", dir.display()));
        }
        Some(dir) => dir,
        None => PathBuf::from("config"),
    };
    let config = match Config::load(&dir, cli.env.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if cli.check {
        if let Err(e) = config.check() {
            return fail(e);
        }
        return match orchestrator::agents::Agents::load(&config.agents.file) {
            Ok(agents) => {
                for a in agents.describe() {
                    println!("{}\t{:?}\t{}", a.name, a.kind, a.description);
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    let telemetry = match kit::telemetry::init(
        &config.log,
        &config.otel,
        kit::telemetry::Service {
            name: "orchestrator",
            target: "orchestrator",
        },
    ) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let code = match runtime.block_on(orchestrator::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "orchestrator failed");
            eprintln!("orchestrator: {e}");
            ExitCode::FAILURE
        }
    };
    drop(runtime);
    telemetry.shutdown();
    code
}
