//! `rls-load`: a load generator for Avail's resource list server (RFC 4662 list
//! subscriptions to Blink-style `sip:<user>+presence@<domain>` services), on loopback.
//!
//! `rls-load prepare` writes the XCAP documents of a run (see [`layout`]): an allow-all
//! pres-rules per presentity and, per subscriber, a resource-lists document with its list
//! and the rls-services document whose service refers to it. The accounts must exist
//! already (`avail-server user import`, one password for all).
//!
//! `rls-load run` subscribes every list and drives a steady PUBLISH load over the
//! presentities; see [`run`] for the phases and figures. The server must take requests from
//! 127.0.0.1 without digest (`--trusted 127.0.0.1/32`). With `--server-pid` it reports the
//! server's CPU time (utime+stime, which stays comparable on a busy machine) per list
//! subscription, per NOTIFY and per resource update, and its peak RSS (VmHWM). Exit status
//! 1 when anything went wrong (failures, missing updates, RLMI version gaps), 2 when the run
//! could not start.
//!
//! ```text
//! rls-load prepare --xcap-root http://127.0.0.1:8080/xcap-root --domain bench.test \
//!     --subscribers 1000 --list-size 100 --presentities 1000 --password bench
//! rls-load run --server 127.0.0.1:5060 --domain bench.test --subscribers 1000 \
//!     --list-size 100 --presentities 1000 --pub-rate 200 --seconds 20 --server-pid PID
//! ```

mod layout;
mod link;
mod lists;
mod run;
mod xcap;

// presence-load's request builders (OPTIONS probe, PUBLISH with the send time in the
// PIDF note, Call-ID naming) and /proc readers serve this generator unchanged; they are
// compiled from presence-load's sources rather than copied (presence-load is a binary
// crate, so it cannot be a dependency). Its watcher SUBSCRIBE is not used here.
#[path = "../../presence-load/src/loadgen.rs"]
mod loadgen;
#[path = "../../presence-load/src/sip.rs"]
#[allow(dead_code)]
mod sip;
#[path = "../../presence-load/src/stats.rs"]
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::layout::Layout;

#[derive(Debug, Parser)]
#[command(
    name = "rls-load",
    about = "Load generator for Avail's resource list server (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the run's pres-rules, resource-lists and rls-services documents through XCAP.
    Prepare(PrepareArgs),
    /// Subscribe every list, publish, measure.
    Run(RunArgs),
}

/// Who subscribes to what; `prepare` and `run` must be given the same values.
#[derive(Debug, Args)]
struct LayoutArgs {
    /// SIP domain of every user (a domain the server serves).
    #[arg(long)]
    domain: String,
    /// Subscribers `<prefix>0`..: one list subscription each.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Entries of each subscriber's list.
    #[arg(long, default_value_t = 100)]
    list_size: usize,
    /// Presentities `pres0`.. the lists are drawn from.
    #[arg(long, default_value_t = 1000)]
    presentities: usize,
    /// User name prefix of the subscribers.
    #[arg(long, default_value = "sub")]
    prefix: String,
}

impl LayoutArgs {
    fn layout(&self) -> Result<Layout, String> {
        Layout::new(
            &self.domain,
            &self.prefix,
            self.subscribers,
            self.list_size,
            self.presentities,
        )
    }
}

#[derive(Debug, Args)]
struct PrepareArgs {
    #[command(flatten)]
    layout: LayoutArgs,
    /// XCAP root URL (http), e.g. `http://127.0.0.1:8080/xcap-root`; it is also
    /// the base of the rls-services anchors.
    #[arg(long)]
    xcap_root: String,
    /// Password of every account.
    #[arg(long, default_value = "bench")]
    password: String,
    /// Leave the presentities' pres-rules alone (another preparation wrote them).
    #[arg(long)]
    no_pres_rules: bool,
    /// Concurrent XCAP connections.
    #[arg(long, default_value_t = 8)]
    workers: usize,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    layout: LayoutArgs,
    /// The server's SIP TCP address; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:5060")]
    server: SocketAddr,
    /// TCP connections the list subscriptions are spread over.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// TCP connections the PUBLISHes are spread over.
    #[arg(long, default_value_t = 2)]
    pub_connections: usize,
    /// List SUBSCRIBEs per second.
    #[arg(long, default_value_t = 200.0)]
    sub_rate: f64,
    /// Initial PUBLISHes per second (one per presentity, before the subscriptions).
    #[arg(long, default_value_t = 1000.0)]
    initial_pub_rate: f64,
    /// PUBLISH modifications per second in the publish window (0: no window).
    #[arg(long, default_value_t = 200.0)]
    pub_rate: f64,
    /// Length of the publish window, in seconds.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Expires of SUBSCRIBE and PUBLISH.
    #[arg(long, default_value_t = 3600)]
    expires: u32,
    /// Longest wait for each setup phase, in seconds.
    #[arg(long, default_value_t = 60.0)]
    setup_timeout: f64,
    /// The server's PID, for its CPU time and peak memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Appends the run's figures to this file as one tab-separated row (a new file gets the
    /// column names first), so several runs can be tabulated side by side.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Name of the run in the summary row.
    #[arg(long, default_value = "run")]
    label: String,
}

/// The columns of a `--summary` row.
const SUMMARY_COLUMNS: [&str; 15] = [
    "run",
    "lists × entries",
    "complete",
    "first full p50 ms",
    "first full p99 ms",
    "all states p50 ms",
    "all states p99 ms",
    "NOTIFY/s",
    "updates/s",
    "delivered",
    "latency p50 ms",
    "latency p99 ms",
    "version gaps",
    "µs CPU / NOTIFY (/ update)",
    "VmHWM MB",
];

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rls-load: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = match Cli::parse().command {
        Command::Prepare(args) => runtime.block_on(prepare(args)),
        Command::Run(args) => runtime.block_on(measure(args)),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(problem) => {
            eprintln!("rls-load: {problem}");
            ExitCode::from(2)
        }
    }
}

async fn prepare(args: PrepareArgs) -> Result<bool, String> {
    let root = xcap::Root::parse(&args.xcap_root)?;
    let layout = args.layout.layout()?;
    let started = std::time::Instant::now();
    let written = xcap::prepare(xcap::Preparation {
        layout,
        root,
        password: args.password,
        pres_rules: !args.no_pres_rules,
        workers: args.workers,
    })
    .await?;
    println!(
        "rls-load: {written} XCAP documents written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}

async fn measure(args: RunArgs) -> Result<bool, String> {
    if !args.server.ip().is_loopback() {
        return Err(format!("{} is not a loopback address", args.server));
    }
    if args.connections == 0 || args.pub_connections == 0 {
        return Err("--connections and --pub-connections must be positive".into());
    }
    if !(args.sub_rate > 0.0
        && args.initial_pub_rate > 0.0
        && args.pub_rate >= 0.0
        && args.seconds >= 0.0)
    {
        return Err(
            "--sub-rate and --initial-pub-rate must be positive, --pub-rate and --seconds not negative"
                .into(),
        );
    }
    let layout = args.layout.layout()?;
    let shape = format!("{} × {}", layout.subscribers, layout.list_size);
    let plan = run::Plan {
        layout,
        server: args.server,
        connections: args.connections,
        pub_connections: args.pub_connections,
        sub_rate: args.sub_rate,
        initial_pub_rate: args.initial_pub_rate,
        pub_rate: args.pub_rate,
        seconds: if args.pub_rate > 0.0 {
            args.seconds
        } else {
            0.0
        },
        expires: args.expires,
        setup_timeout: Duration::from_secs_f64(args.setup_timeout),
        server_pid: args.server_pid,
    };
    let figures = run::run(plan).await?;
    if let Some(path) = &args.summary {
        let fixed = |value: Option<f64>, decimals: usize| {
            value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
        };
        let cpu = match (figures.cpu_us_per_notify, figures.cpu_us_per_update) {
            (Some(notify), Some(update)) => format!("{notify:.0} ({update:.1})"),
            _ => "-".to_owned(),
        };
        let row = [
            args.label.clone(),
            shape,
            format!("{}/{}", figures.complete, figures.lists),
            fixed(figures.first_full_ms[0], 1),
            fixed(figures.first_full_ms[1], 1),
            fixed(figures.complete_ms[0], 1),
            fixed(figures.complete_ms[1], 1),
            fixed(figures.notifies_per_sec, 0),
            fixed(figures.updates_per_sec, 0),
            fixed(figures.delivered, 3),
            fixed(figures.latency_ms[0], 1),
            fixed(figures.latency_ms[1], 1),
            figures.version_gaps.to_string(),
            cpu,
            fixed(figures.hwm_mb, 1),
        ];
        if let Err(error) = append_row(path, &row) {
            eprintln!("rls-load: cannot append to {}: {error}", path.display());
        }
    }
    Ok(figures.clean)
}

/// Appends one tab-separated row; a new file starts with the column names.
fn append_row(path: &std::path::Path, row: &[String]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if file.metadata()?.len() == 0 {
        writeln!(file, "{}", SUMMARY_COLUMNS.join("\t"))?;
    }
    writeln!(file, "{}", row.join("\t"))
}
