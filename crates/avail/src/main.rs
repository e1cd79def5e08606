//! The `avail` binary: `avail agent` runs the agents of the configured accounts until SIGINT
//! or SIGTERM (then unpublishes and unregisters); other commands talk to one running agent.

use std::process::ExitCode;

use avail::cli::{ApiClient, Cli, CliError, Command};
use avail_client::config::AccountSettings;
use clap::Parser;

/// Runs one agent per account of the file (or the one `--account` names) until SIGINT or
/// SIGTERM; if one cannot start, those already started are stopped.
async fn run_agent(cli: &Cli) -> Result<(), String> {
    let accounts = match &cli.account {
        Some(name) => AccountSettings::load(&cli.config, Some(name)).map(|one| vec![one]),
        None => AccountSettings::load_all(&cli.config),
    }
    .map_err(|e| e.to_string())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let mut handles = Vec::new();
    let mut failure = None;
    for settings in accounts {
        let address = settings.address();
        match avail::agent::start(settings).await {
            Ok(handle) => {
                tracing::info!(account = %address, api = %handle.api_addr, "agent running");
                handles.push(handle);
            }
            Err(e) => {
                failure = Some(format!("{address}: {e}"));
                break;
            }
        }
    }
    if failure.is_none() {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    for handle in handles {
        handle.stop().await;
    }
    failure.map_or(Ok(()), Err)
}

async fn run_command(cli: &Cli) -> Result<(), CliError> {
    let client = match &cli.api {
        Some(addr) => ApiClient::new(addr)?,
        None => {
            ApiClient::for_account(&AccountSettings::load(&cli.config, cli.account.as_deref())?)?
        }
    };
    avail::cli::run(cli, &client).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = if matches!(cli.command, Command::Agent) {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .init();
        run_agent(&cli).await
    } else {
        run_command(&cli).await.map_err(|e| e.to_string())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("avail: {message}");
            ExitCode::FAILURE
        }
    }
}
