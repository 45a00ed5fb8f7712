//! `locus`: one binary, one subcommand per role. Thin: parse, configure,
//! install signals, run.

#![recursion_limit = "256"]

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use locus::cli::{Cli, Command};
use locus::{commands, config, demo, telemetry};
use tokio_util::sync::CancellationToken;

// mimalloc instead of glibc malloc: the SIP proxy's per-message allocations
// (parse, rewrite, serialise) cost ~20% of its CPU in glibc (perf, docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo talks to a person on stdout: only warnings on stderr.
    let quiet = matches!(cli.command, Command::Demo(_));
    telemetry::init(cli.log_format, quiet);
    let cfg = match config::load(cli.config.as_deref(), std::env::vars(), cli.overrides()) {
        Ok(cfg) => cfg,
        Err(e) => {
            // One line, as promised: toml/serde messages span several
            // ("invalid node id ...\nin `agent.node_id`").
            let msg = format!("{e:#}");
            let line: Vec<&str> = msg
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("locus: {}", line.join(" "));
            return ExitCode::from(64);
        }
    };
    if cli.check_config {
        // `| head` closing the pipe is not an error worth a panic.
        let _ = writeln!(std::io::stdout(), "{cfg:#?}");
        return ExitCode::SUCCESS;
    }
    // The proxy sizes its runtime (`proxy.core.workers`); the other roles
    // take tokio's default (one thread per CPU).
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Command::Proxy(_) = cli.command {
        runtime.worker_threads(cfg.proxy.core.worker_count());
    }
    match runtime.build() {
        Ok(rt) => rt.block_on(run(cli, cfg)),
        Err(e) => {
            eprintln!("locus: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, cfg: config::Config) -> ExitCode {
    let token = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(token.clone()));
    let result = match cli.command {
        Command::Agent(_) => commands::agent(&cfg, token).await,
        Command::Proxy(_) => commands::proxy(&cfg, token).await,
        Command::Inspect(args) => commands::inspect(&cfg, &args, token).await,
        Command::Node(args) => commands::node(&cfg, &args).await,
        Command::Sim(args) => commands::sim(&args, token).await,
        Command::Demo(args) => demo::run(&cfg, &args, token).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "locus stopped");
            eprintln!("locus: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
    token.cancel();
}
