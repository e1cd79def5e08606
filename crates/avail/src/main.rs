//! The `avail` binary: `avail agent` runs the agent until SIGINT or SIGTERM (then unpublishes
//! and unregisters); other commands talk to the running agent.

use std::process::ExitCode;

use avail::cli::{ApiClient, Cli, CliError, Command};
use avail_client::config::AccountSettings;
use clap::Parser;

async fn run_agent(cli: &Cli) -> Result<(), String> {
    let settings = AccountSettings::load(&cli.config).map_err(|e| e.to_string())?;
    let handle = avail::agent::start(settings)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(api = %handle.api_addr, "agent running");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    handle.stop().await;
    Ok(())
}

async fn run_command(cli: &Cli) -> Result<(), CliError> {
    let client = match &cli.api {
        Some(addr) => ApiClient::new(addr)?,
        None => ApiClient::for_account(&AccountSettings::load(&cli.config)?)?,
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
