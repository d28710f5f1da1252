//! The `sluice` binary: parse the command line, load and check the configuration, run the
//! proxy until SIGTERM or SIGINT, then drain and exit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use sluice::{Config, Server};

#[derive(Parser)]
#[command(name = "sluice", version, about = "A protocol-aware L4/L7 proxy")]
struct Cli {
    /// Configuration file (YAML).
    #[arg(short, long, default_value = "sluice.yaml")]
    config: PathBuf,
    /// Validate the configuration and exit: 0 and "config ok", or 1 and every error.
    #[arg(long)]
    check: bool,
    /// Worker threads (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let config = match Config::from_file(&cli.config) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{}: invalid configuration", cli.config.display());
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check {
        println!("config ok");
        return ExitCode::SUCCESS;
    }
    raise_open_file_limit(&config);
    let workers = cli.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // The handlers go in before the listeners accept: a SIGTERM that arrives as soon as
    // the first connection is served must drain, not kill the process.
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("sluice: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::start(config, workers) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    signals.wait_then_drain(&server);
    server.wait();
    tracing::info!("sluice stopped");
    ExitCode::SUCCESS
}

/// Raises the soft open-file limit to the hard one. The hard limit is the operator's to
/// set (systemd `LimitNOFILE`, `ulimit -Hn`); when it is below what the listeners'
/// `max_connections` need, say so at startup rather than failing accepts under load.
fn raise_open_file_limit(config: &Config) {
    let open_files = sluice::server::raise_open_file_limit(u64::MAX);
    let wanted: u64 = config.listeners.iter().map(|l| 2 * l.max_connections as u64).sum();
    if open_files < wanted {
        tracing::warn!(
            open_files,
            wanted,
            "the open-file limit is below two descriptors per allowed connection; raise the hard limit (ulimit -Hn, systemd LimitNOFILE)"
        );
    }
}

/// SIGTERM and SIGINT, caught from before the server starts.
struct Signals {
    runtime: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (term, int) = runtime.block_on(async {
            Ok::<_, std::io::Error>((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?))
        })?;
        Ok(Signals { runtime, term, int })
    }

    /// Blocks until SIGTERM or SIGINT, starts the drain, and makes a second signal stop at
    /// once.
    fn wait_then_drain(self, server: &sluice::ServerHandle) {
        let Signals { runtime, mut term, mut int } = self;
        let first = runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        });
        tracing::info!(signal = first, "shutting down: draining connections");
        server.drain();
        // A second signal while draining means "now".
        let stop = server.stop_handle();
        std::thread::spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            });
            tracing::warn!("second signal: stopping now");
            stop();
        });
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
