//! The desktop's idle time, read by the agent itself for auto-away (Blink's `idle_threshold`,
//! blink-compat §5.4). On X11 the MIT-SCREEN-SAVER extension's `QueryInfo` request on the
//! screen's root window answers `ms_since_user_input`; a Wayland compositor instead says when
//! the seat has been idle for the threshold and when input returns (see [`wayland_idle`]).
//! Every reading goes through [`Shared::report_idle`], the path `POST /idle` takes, so the
//! two never disagree on what a reading does.
//!
//! A Wayland session (`WAYLAND_DISPLAY` set) is read through the compositor, never through
//! X11: X11's idle time there counts only the input of XWayland clients, so a user typing
//! into native Wayland windows would be declared away. Without a display, with
//! `idle_source = "off"`, or while the display cannot be reached (logged once per outage,
//! reconnection tried at most once a minute), `avail idle` reports the idle time instead.
//!
//! `choose_source` and `IdleSchedule` decide, with the environment and time passed in;
//! [`run`] only asks the display server and sleeps.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use avail_client::config::IdleSource;
use tokio::sync::{oneshot, watch};
use tracing::Instrument as _;
use x11rb::connection::{Connection as _, RequestConnection as _};
use x11rb::errors::{ConnectError, ConnectionError, ReplyError};
use x11rb::protocol::screensaver;
use x11rb::protocol::xproto::Window;
use x11rb::rust_connection::RustConnection;

use crate::agent::{stopped, Shared};
use crate::wayland_idle::{self, Activity, IdleWatch, WaylandIdleError};

/// How often the X server is asked while the user is idle: only asking shows the return, and
/// 2 s makes it prompt without waking much (Blink's Cocoa timer asks every second).
const WHILE_IDLE_POLL: Duration = Duration::from_secs(2);
/// Added to the wait for the threshold: the server counts whole milliseconds and timers round,
/// so waking exactly on time could find the threshold a millisecond away and ask again.
const THRESHOLD_MARGIN: Duration = Duration::from_millis(100);
/// Least time between connection attempts, so that an X server that is gone, or that accepts
/// and then fails, is not hammered.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(60);
/// Longest wait for the display server to answer a connection or a request.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the desktop's idle time comes from, decided once when the agent starts.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    Read(DisplayServer),
    /// Not read, for this reason; `avail idle` reports it.
    NotRead(&'static str),
}

/// Where the idle time is read.
#[derive(Debug, PartialEq, Eq)]
enum DisplayServer {
    /// The X server of this display name.
    X11(String),
    /// The Wayland compositor listening on this socket.
    Wayland(PathBuf),
}

/// The environment variables that decide the source, read once where the agent runs.
#[derive(Debug)]
struct Session {
    /// `DISPLAY`.
    display: Option<String>,
    /// `WAYLAND_DISPLAY`.
    wayland_display: Option<String>,
    /// `XDG_RUNTIME_DIR`, where a Wayland display's socket is.
    runtime_dir: Option<String>,
}

impl Session {
    fn current() -> Session {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Session {
            display: var("DISPLAY"),
            wayland_display: var("WAYLAND_DISPLAY"),
            runtime_dir: var("XDG_RUNTIME_DIR"),
        }
    }
}

/// The displays configured, each overriding its environment variable.
#[derive(Debug, Default)]
struct Displays<'a> {
    x11: Option<&'a str>,
    wayland: Option<&'a str>,
}

/// The source the settings and the session call for: each configured display before its
/// environment variable; `auto` reads a Wayland session's compositor, else the X server.
fn choose_source(setting: IdleSource, configured: &Displays<'_>, session: &Session) -> Source {
    let set = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_owned);
    let x11 = set(configured.x11).or(session.display.clone());
    let wayland = set(configured.wayland).or(session.wayland_display.clone());
    let wayland_socket = |display: &str| {
        let runtime_dir = session.runtime_dir.as_deref().map(std::path::Path::new);
        match wayland_idle::socket_path(display, runtime_dir) {
            Some(path) => Source::Read(DisplayServer::Wayland(path)),
            None => Source::NotRead(
                "the Wayland display is a socket name, but XDG_RUNTIME_DIR is not set",
            ),
        }
    };
    match (setting, wayland, x11) {
        (IdleSource::Off, ..) => Source::NotRead("idle_source is \"off\""),
        (IdleSource::Auto | IdleSource::Wayland, Some(wayland), _) => wayland_socket(&wayland),
        (IdleSource::Wayland, None, _) => Source::NotRead(
            "no Wayland display (neither wayland_display nor WAYLAND_DISPLAY is set)",
        ),
        (IdleSource::Auto | IdleSource::X11, _, Some(x11)) => Source::Read(DisplayServer::X11(x11)),
        (IdleSource::Auto, None, None) => Source::NotRead(
            "no display (none of wayland_display, WAYLAND_DISPLAY, x11_display, DISPLAY is set)",
        ),
        (IdleSource::X11, _, None) => {
            Source::NotRead("no X display (neither x11_display nor DISPLAY is set)")
        }
    }
}

/// How reading has gone lately, to log changes rather than every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Starting,
    Reading,
    Failing,
}

/// When to ask the X server next and when to connect again (sans-IO: times passed in).
#[derive(Debug)]
struct IdleSchedule {
    threshold: Duration,
    last_connect: Option<Instant>,
    health: Health,
}

impl IdleSchedule {
    fn new(threshold: Duration) -> IdleSchedule {
        IdleSchedule {
            threshold,
            last_connect: None,
            health: Health::Starting,
        }
    }

    /// The wait before the next connection attempt: none at first, or after a connection that
    /// lasted (the X server restarted), else the rest of [`RECONNECT_INTERVAL`].
    fn until_connect(&self, now: Instant) -> Duration {
        self.last_connect.map_or(Duration::ZERO, |last| {
            RECONNECT_INTERVAL.saturating_sub(now.saturating_duration_since(last))
        })
    }

    fn connecting(&mut self, now: Instant) {
        self.last_connect = Some(now);
    }

    /// The X server reports `idle` without input: the wait before asking again, and whether
    /// this is the first reading since start or since a failure (worth logging). While active,
    /// idle time only grows as fast as the clock, so nothing can change before the threshold
    /// is reached; while idle, input can come at any moment.
    fn reading(&mut self, idle: Duration) -> (Duration, bool) {
        let first = self.answered();
        let wait = match self.threshold.checked_sub(idle) {
            Some(left) if !left.is_zero() => left + THRESHOLD_MARGIN,
            _ => WHILE_IDLE_POLL,
        };
        (wait, first)
    }

    /// The display server answered: whether this is the first answer since start or since a
    /// failure (worth logging).
    fn answered(&mut self) -> bool {
        let first = self.health != Health::Reading;
        self.health = Health::Reading;
        first
    }

    /// Connecting or asking failed: whether this begins an outage (logged once; the attempts
    /// that fail after it are not).
    fn failed(&mut self) -> bool {
        let first = self.health != Health::Failing;
        self.health = Health::Failing;
        first
    }
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Reply(#[from] ReplyError),
    #[error("the X server lacks the MIT-SCREEN-SAVER extension")]
    NoExtension,
    #[error(transparent)]
    Wayland(#[from] WaylandIdleError),
    #[error("the display server did not answer within {CALL_TIMEOUT:?}")]
    Timeout,
    #[error("the call to the display server ended without an answer")]
    NoAnswer,
    #[error("cannot start a thread for the call to the display server: {0}")]
    Thread(std::io::Error),
}

/// A connection to the X server and the root window whose screen's idle time is asked for.
struct X11Screen {
    connection: RustConnection,
    root: Window,
}

impl X11Screen {
    /// Connects to `display` (blocking) and checks that the server has MIT-SCREEN-SAVER.
    fn connect(display: &str) -> Result<X11Screen, ReadError> {
        let (connection, screen) = RustConnection::connect(Some(display))?;
        if connection
            .extension_information(screensaver::X11_EXTENSION_NAME)?
            .is_none()
        {
            return Err(ReadError::NoExtension);
        }
        let root = connection
            .setup()
            .roots
            .get(screen)
            .ok_or(ConnectError::InvalidScreen)?
            .root;
        Ok(X11Screen { connection, root })
    }

    /// The time since the last input of any device (`QueryInfo`, blocking).
    fn idle_time(&self) -> Result<Duration, ReadError> {
        let info = screensaver::query_info(&self.connection, self.root)?.reply()?;
        Ok(Duration::from_millis(info.ms_since_user_input.into()))
    }
}

/// Runs a blocking call to the display server on a thread of its own, waiting at most
/// [`CALL_TIMEOUT`]. Not on the runtime's blocking pool: a frozen server would hold that
/// thread, and the runtime waits for its blocking threads when it shuts down; a thread left
/// behind here ends when the server answers or the process exits.
async fn call_display<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, ReadError> + Send + 'static,
) -> Result<T, ReadError> {
    let (answer, answered) = oneshot::channel();
    std::thread::Builder::new()
        .name("avail-display".into())
        .spawn(move || {
            let _ = answer.send(call());
        })
        .map_err(ReadError::Thread)?;
    match tokio::time::timeout(CALL_TIMEOUT, answered).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ReadError::NoAnswer),
        Err(_) => Err(ReadError::Timeout),
    }
}

/// `work`'s output, or none when the agent stops first.
async fn until_stopped<T>(
    work: impl Future<Output = T>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<T> {
    tokio::select! {
        output = work => Some(output),
        _ = stopped(shutdown) => None,
    }
}

/// Reads the desktop's idle time for `shared`'s account until the agent stops.
pub async fn run(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let settings = &shared.settings;
    let account = settings.aor();
    let configured = Displays {
        x11: settings.x11_display.as_deref(),
        wayland: settings.wayland_display.as_deref(),
    };
    let server = match choose_source(settings.idle_source, &configured, &Session::current()) {
        Source::Read(server) => server,
        Source::NotRead(reason) => {
            tracing::info!(%account, "desktop idle time not read: {reason}; `avail idle` reports it");
            return;
        }
    };
    let span = match &server {
        DisplayServer::X11(x11_display) => {
            tracing::info_span!("desktop_idle", %account, %x11_display)
        }
        DisplayServer::Wayland(socket) => {
            let wayland_socket = socket.display();
            tracing::info_span!("desktop_idle", %account, %wayland_socket)
        }
    };
    read_display(&shared, &server, shutdown)
        .instrument(span)
        .await;
}

/// A display server the agent is connected to.
enum Connected {
    X11(Arc<X11Screen>),
    Wayland(IdleWatch),
}

/// Connects to `server` (off the runtime: it may not answer).
async fn connect(server: &DisplayServer, threshold: Duration) -> Result<Connected, ReadError> {
    match server {
        DisplayServer::X11(display) => {
            let display = display.clone();
            let screen = call_display(move || X11Screen::connect(&display)).await?;
            Ok(Connected::X11(Arc::new(screen)))
        }
        DisplayServer::Wayland(socket) => {
            let socket = socket.clone();
            let watch = call_display(move || Ok(IdleWatch::connect(&socket, threshold)?)).await?;
            Ok(Connected::Wayland(watch))
        }
    }
}

/// Connects to `server` and reads it, reconnecting after failures.
async fn read_display(
    shared: &Shared,
    server: &DisplayServer,
    mut shutdown: watch::Receiver<bool>,
) {
    let threshold = shared.settings.idle_threshold;
    let mut schedule = IdleSchedule::new(threshold);
    loop {
        let wait = schedule.until_connect(Instant::now());
        if until_stopped(tokio::time::sleep(wait), &mut shutdown)
            .await
            .is_none()
        {
            return;
        }
        schedule.connecting(Instant::now());
        let failure = match until_stopped(connect(server, threshold), &mut shutdown).await {
            None => return,
            Some(Err(e)) => e,
            Some(Ok(Connected::X11(screen))) => {
                match read_x11(shared, &screen, &mut schedule, &mut shutdown).await {
                    None => return,
                    Some(e) => e,
                }
            }
            Some(Ok(Connected::Wayland(mut watch))) => {
                match read_wayland(shared, &mut watch, &mut schedule, &mut shutdown).await {
                    None => return,
                    Some(e) => e,
                }
            }
        };
        if schedule.failed() {
            tracing::warn!(
                error = %failure,
                "cannot read the desktop idle time from the display server; `avail idle` \
                 reports it until the server answers (asked again every minute)"
            );
        } else {
            tracing::debug!(error = %failure, "display server still unreachable");
        }
    }
}

/// Reports each reading of `screen` until a call fails (its error) or the agent stops (none).
async fn read_x11(
    shared: &Shared,
    screen: &Arc<X11Screen>,
    schedule: &mut IdleSchedule,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<ReadError> {
    loop {
        let asked = screen.clone();
        let idle = match until_stopped(call_display(move || asked.idle_time()), shutdown).await? {
            Ok(idle) => idle,
            Err(e) => return Some(e),
        };
        shared.report_idle(idle);
        let (wait, first) = schedule.reading(idle);
        if first {
            tracing::info!("desktop idle time read from the X server (MIT-SCREEN-SAVER)");
        }
        until_stopped(tokio::time::sleep(wait), shutdown).await?;
    }
}

/// Reports each of the compositor's notifications as a reading (the threshold when idle,
/// none on input) until the connection fails (its error) or the agent stops (none).
async fn read_wayland(
    shared: &Shared,
    watch: &mut IdleWatch,
    schedule: &mut IdleSchedule,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<ReadError> {
    if schedule.answered() {
        tracing::info!(
            "desktop idle time told by the Wayland compositor ({})",
            watch.protocol()
        );
    }
    loop {
        match until_stopped(watch.next(), shutdown).await? {
            Ok(Activity::Idle) => shared.report_idle(shared.settings.idle_threshold),
            Ok(Activity::Resumed) => shared.report_idle(Duration::ZERO),
            Err(e) => return Some(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avail_client::presence::{OwnPresence, Status};
    use std::time::SystemTime;

    fn session(display: Option<&str>, wayland: Option<&str>) -> Session {
        Session {
            display: display.map(str::to_owned),
            wayland_display: wayland.map(str::to_owned),
            runtime_dir: Some("/run/user/1000".to_owned()),
        }
    }

    fn x11(display: &str) -> Source {
        Source::Read(DisplayServer::X11(display.to_owned()))
    }

    fn wayland(socket: &str) -> Source {
        Source::Read(DisplayServer::Wayland(socket.into()))
    }

    fn configured<'a>(x11: Option<&'a str>, wayland: Option<&'a str>) -> Displays<'a> {
        Displays { x11, wayland }
    }

    #[test]
    fn the_source_follows_the_settings_and_the_session() {
        let none = Displays::default();
        let desktop = session(Some(":0"), None);
        assert_eq!(choose_source(IdleSource::Auto, &none, &desktop), x11(":0"));
        assert_eq!(
            choose_source(IdleSource::Auto, &configured(Some(":5"), None), &desktop),
            x11(":5"),
            "the configured display before DISPLAY"
        );
        assert_eq!(
            choose_source(IdleSource::X11, &configured(Some(""), None), &desktop),
            x11(":0"),
            "an empty setting is no setting"
        );
        assert!(matches!(
            choose_source(IdleSource::Off, &configured(Some(":5"), None), &desktop),
            Source::NotRead(reason) if reason.contains("off")
        ));
        assert!(matches!(
            choose_source(IdleSource::Wayland, &none, &desktop),
            Source::NotRead(reason) if reason.contains("no Wayland display")
        ));

        let headless = session(None, None);
        assert!(matches!(
            choose_source(IdleSource::Auto, &none, &headless),
            Source::NotRead(reason) if reason.contains("no display")
        ));
        assert_eq!(
            choose_source(IdleSource::Auto, &configured(Some(":5"), None), &headless),
            x11(":5")
        );
        assert_eq!(
            choose_source(
                IdleSource::Auto,
                &configured(None, Some("/tmp/w/wayland-1")),
                &headless
            ),
            wayland("/tmp/w/wayland-1"),
            "a configured Wayland display outside a Wayland session"
        );

        let wayland_session = session(Some(":0"), Some("wayland-0"));
        for x11_display in [None, Some(":5")] {
            assert_eq!(
                choose_source(
                    IdleSource::Auto,
                    &configured(x11_display, None),
                    &wayland_session
                ),
                wayland("/run/user/1000/wayland-0"),
                "never X11's idle time in a Wayland session"
            );
        }
        assert_eq!(
            choose_source(IdleSource::X11, &none, &wayland_session),
            x11(":0"),
            "x11 insists even under Wayland"
        );
        assert_eq!(
            choose_source(
                IdleSource::Wayland,
                &configured(None, Some("wayland-2")),
                &wayland_session
            ),
            wayland("/run/user/1000/wayland-2"),
            "the configured display before WAYLAND_DISPLAY"
        );
        let no_runtime_dir = Session {
            runtime_dir: None,
            ..session(None, Some("wayland-0"))
        };
        assert!(matches!(
            choose_source(IdleSource::Auto, &none, &no_runtime_dir),
            Source::NotRead(reason) if reason.contains("XDG_RUNTIME_DIR")
        ));
    }

    #[test]
    fn while_active_the_next_reading_is_when_the_threshold_can_be_reached() {
        let mut schedule = IdleSchedule::new(Duration::from_secs(600));
        let (wait, first) = schedule.reading(Duration::ZERO);
        assert!(first);
        assert_eq!(wait, Duration::from_secs(600) + THRESHOLD_MARGIN);
        let (wait, first) = schedule.reading(Duration::from_millis(599_500));
        assert!(!first);
        assert_eq!(wait, Duration::from_millis(500) + THRESHOLD_MARGIN);
        for idle in [600, 601, 86_400] {
            let (wait, _) = schedule.reading(Duration::from_secs(idle));
            assert_eq!(wait, WHILE_IDLE_POLL, "idle {idle} s: watching for input");
        }
        let mut always = IdleSchedule::new(Duration::ZERO);
        assert_eq!(
            always.reading(Duration::ZERO).0,
            WHILE_IDLE_POLL,
            "a zero threshold does not spin"
        );
    }

    /// Drives the schedule and the presence state machine on a virtual clock against a user
    /// who gives input at `inputs` (seconds); returns the seconds at which the published state
    /// changed, with whether it became idle, and the number of readings.
    fn simulate(threshold: u64, inputs: &[f64], until: f64) -> (Vec<(f64, bool)>, usize) {
        let start = SystemTime::UNIX_EPOCH;
        let threshold = Duration::from_secs(threshold);
        let mut presence = OwnPresence::new(None, threshold, start);
        let mut schedule = IdleSchedule::new(threshold);
        let (mut now, mut changes, mut readings) = (0.0_f64, Vec::new(), 0);
        while now < until {
            let last_input = inputs
                .iter()
                .copied()
                .filter(|&t| t <= now)
                .fold(0.0, f64::max);
            let idle = Duration::from_secs_f64(now - last_input);
            readings += 1;
            let at = start + Duration::from_secs_f64(now);
            if presence.on_idle(idle, at) {
                changes.push((now, presence.effective().idle_since.is_some()));
            }
            now += schedule.reading(idle).0.as_secs_f64();
        }
        assert_eq!(
            presence.effective().status == Status::Away,
            changes.last().is_some_and(|&(_, idle)| idle)
        );
        (changes, readings)
    }

    #[test]
    fn away_follows_the_threshold_closely_and_input_ends_it_within_a_poll() {
        let (changes, readings) = simulate(600, &[250.0, 2000.0, 2001.5], 3000.0);
        let away = 250.0 + 600.0;
        let back = 2000.0;
        let away_again = 2001.5 + 600.0;
        // Sums of seconds in floating point are off by a rounding error at most.
        let poll = WHILE_IDLE_POLL.as_secs_f64() + 1e-6;
        let margin = THRESHOLD_MARGIN.as_secs_f64() + 1e-6;
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(changes[0].1 && changes[0].0 >= away && changes[0].0 <= away + margin);
        assert!(!changes[1].1 && changes[1].0 >= back && changes[1].0 <= back + poll);
        assert!(changes[2].1 && changes[2].0 >= away_again && changes[2].0 <= away_again + poll);
        // Active stretches cost a reading or two each; idle ones one per poll.
        let idle_time = (back - away) + (3000.0 - away_again);
        assert!(
            readings as f64 <= idle_time / poll + 10.0,
            "{readings} readings"
        );
    }

    #[test]
    fn connections_are_attempted_at_most_once_a_minute() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut schedule = IdleSchedule::new(Duration::from_secs(600));
        assert_eq!(
            schedule.until_connect(start),
            Duration::ZERO,
            "at once at first"
        );
        schedule.connecting(start);
        assert_eq!(schedule.until_connect(at(10)), Duration::from_secs(50));
        assert_eq!(schedule.until_connect(at(60)), Duration::ZERO);
        schedule.connecting(at(60));
        assert_eq!(
            schedule.until_connect(at(3600)),
            Duration::ZERO,
            "a connection that lasted is replaced at once"
        );
    }

    #[test]
    fn an_outage_and_the_recovery_are_logged_once() {
        let mut schedule = IdleSchedule::new(Duration::from_secs(600));
        assert!(schedule.failed(), "the first failure");
        assert!(!schedule.failed(), "the same outage");
        assert!(schedule.reading(Duration::ZERO).1, "reading again");
        assert!(!schedule.reading(Duration::ZERO).1);
        assert!(schedule.failed(), "the connection was lost");

        let mut reading = IdleSchedule::new(Duration::from_secs(600));
        assert!(reading.reading(Duration::ZERO).1, "the first reading");
    }
}
