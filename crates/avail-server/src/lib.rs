//! Avail's server process: configuration, command line, and the I/O shell that connects
//! the sans-IO protocol crates to sockets, timers and storage.

pub mod accounts;
mod auth;
mod backend;
pub mod cli;
pub mod config;
mod connect;
mod pacing;
mod presence;
mod proxy;
mod register;
mod reply;
mod rls;
mod server;
mod sip_core;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Parse the command line and run the chosen command; the exit code says whether it worked.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let config = match cli.settings.resolve() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("avail-server: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("avail-server: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Run) {
            Command::Run => server::run(config).await,
            Command::User(command) => accounts::run(&config, command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("avail-server: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
