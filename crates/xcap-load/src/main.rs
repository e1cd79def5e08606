//! `xcap-load`: an XCAP load generator for measuring Avail's XCAP server on loopback.
//!
//! Each virtual client is one account with its own HTTP/1.1 keep-alive connection and
//! digest session. All clients first seed their resource-lists document (unmeasured),
//! then repeat one scenario until the time or the request budget runs out. The report
//! gives requests/s, mean/p50/p99/max latency and the statuses seen; the exit status is 1
//! when anything unexpected came back and 2 when the run could not start.
//!
//! A measured operation's latency includes what the client does to complete it: a new
//! challenge after a stale nonce, or the GET that follows a 412 on a document PUT.
//!
//! ```text
//! xcap-load --root http://127.0.0.1:8099/xcap-root --user-pattern 'u{n}@bench.test' \
//!     --users 50 --concurrency 16 --seconds 10 --scenario get-el
//! ```

mod cli;
mod client;
mod digest;
mod scenario;
mod stats;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};

use crate::cli::{Args, Plan, Scenario};
use crate::client::Client;
use crate::scenario::Work;
use crate::stats::Tally;

/// How long a request may still run past the end of the run before it counts as failed.
const GRACE: Duration = Duration::from_secs(10);
/// Seeding is a handful of requests per client; a server that cannot do it in this time
/// is not worth measuring.
const SEED_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let plan = match Args::parse().plan() {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("xcap-load: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("xcap-load: starting the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(plan)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("xcap-load: {error}");
            ExitCode::from(2)
        }
    }
}

/// Seeds, measures and prints the report; `Ok(false)` when the run saw anything
/// unexpected.
async fn run(plan: Plan) -> Result<bool, String> {
    let addr = client::resolve(&plan.root).await?;
    let clients = plan.accounts.len();

    let mut seeding = JoinSet::new();
    for (index, account) in plan.accounts.iter().cloned().enumerate() {
        let root = plan.root.clone();
        seeding.spawn(async move {
            let mut work = Work::new(&root.url, &account);
            let mut client = Client::new(account, root, addr, index);
            work.seed(&mut client).await.map_err(|e| {
                format!("{}@{}: {e}", client.account().user, client.account().domain)
            })?;
            Ok::<_, String>((client, work))
        });
    }
    let seed_deadline = Instant::now() + SEED_TIMEOUT;
    let mut ready = Vec::with_capacity(clients);
    while let Some(joined) = timeout_at(seed_deadline, seeding.join_next())
        .await
        .map_err(|_| "seeding timed out".to_owned())?
    {
        ready.push(joined.map_err(|e| format!("seeding task: {e}"))??);
    }

    // Only the measured phase is timed; the first 401 of every client happened in seeding.
    let budget = plan.requests.map(|n| Arc::new(AtomicU64::new(n)));
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut running = JoinSet::new();
    for (client, work) in ready {
        running.spawn(drive(client, work, plan.scenario, deadline, budget.clone()));
    }
    let mut total = Tally::default();
    while let Some(joined) = running.join_next().await {
        total.merge(joined.map_err(|e| format!("client task: {e}"))?);
    }
    let elapsed = start.elapsed();
    print!(
        "{}",
        stats::report(plan.scenario.name(), clients, elapsed, &mut total)
    );
    Ok(total.clean())
}

/// Takes one request from the shared budget, if there is one.
fn take(budget: &Option<Arc<AtomicU64>>) -> bool {
    budget.as_ref().is_none_or(|left| {
        left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    })
}

/// One client's measured loop. A transport error ends the client: with the server gone,
/// retrying would only spin.
async fn drive(
    mut client: Client,
    mut work: Work,
    scenario: Scenario,
    deadline: Instant,
    budget: Option<Arc<AtomicU64>>,
) -> Tally {
    let mut tally = Tally::default();
    let (challenges, connects) = (client.challenges, client.connects);
    while Instant::now() < deadline && take(&budget) {
        let sent = Instant::now();
        match timeout_at(deadline + GRACE, work.step(&mut client, scenario)).await {
            Ok(Ok(outcome)) => {
                tally.record(
                    outcome.status,
                    sent.elapsed(),
                    scenario::expected(scenario, outcome.status),
                );
                tally.refreshes += u64::from(outcome.refreshed);
            }
            Ok(Err(error)) => {
                tally.transport_error(error);
                break;
            }
            Err(_) => {
                tally.transport_error(format!("no response within {GRACE:?} after the end"));
                break;
            }
        }
    }
    tally.challenges = client.challenges - challenges;
    tally.reconnects = client.connects - connects;
    tally
}
