//! `memory-server`: serves the memory API with the configuration in `config/`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use memory_server::config::Config;

/// The AI Orchestra memory server.
#[derive(Debug, Parser)]
#[command(name = "memory-server", version)]
struct Cli {
    /// Directory holding default.toml and <env>.toml.
    #[arg(long, default_value = "config")]
    config_dir: PathBuf,
    /// Environment whose file overrides the defaults (dev, staging, prod).
    #[arg(long, env = "ORCHESTRA_ENV")]
    env: Option<String>,
    /// Print the SHA-256 of an API key (for auth.keys[].sha256) and exit.
    #[arg(long, value_name = "KEY")]
    hash_key: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to run instead of the HTTP server.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Serve MCP over stdin/stdout (for Claude Desktop, Cursor and other local
    /// clients); exits when stdin closes. Logs go to stderr.
    McpStdio,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(key) = cli.hash_key {
        println!("{}", memory_server::auth::key_digest_hex(&key));
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(&cli.config_dir, cli.env.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("memory-server: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match memory_server::telemetry::init(&config.log, &config.otel) {
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
