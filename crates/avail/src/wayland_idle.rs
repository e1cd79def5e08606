//! Idle notifications from a Wayland compositor, for auto-away (blink-compat §5.4). A Wayland
//! client cannot ask for the idle time; it asks to be told when the seat has had no input
//! for a timeout (`idled`) and when input comes back (`resumed`). Two protocols offer that:
//! ext-idle-notify-v1 (wayland-protocols staging; version 2's *input* notification, which
//! idle inhibitors such as a playing video do not hold back: watching is not being at the
//! keyboard), and, on compositors that predate it (sway 1.7, KDE Plasma 5), KDE's
//! `org_kde_kwin_idle`. GNOME's compositor offers neither.
//!
//! [`IdleWatch::next`] reads the compositor's socket on the runtime, so dropping the watch
//! (the agent stopping) ends everything; only [`IdleWatch::connect`], which waits for the
//! compositor's answers, blocks.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use wayland_client::backend::WaylandError;
use wayland_client::globals::{registry_queue_init, BindError, GlobalError, GlobalListContents};
use wayland_client::protocol::{wl_registry, wl_seat};
use wayland_client::{
    ConnectError, Connection, Dispatch, DispatchError, EventQueue, Proxy, QueueHandle,
};
use wayland_protocols::ext::idle_notify::v1::client::{
    ext_idle_notification_v1, ext_idle_notifier_v1,
};
use wayland_protocols_plasma::idle::client::{org_kde_kwin_idle, org_kde_kwin_idle_timeout};

/// What the compositor reports about the seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// No input for the timeout.
    Idle,
    /// Input again after being idle.
    Resumed,
}

#[derive(Debug, thiserror::Error)]
pub enum WaylandIdleError {
    #[error("no Wayland display (neither wayland_display nor WAYLAND_DISPLAY is set)")]
    NoDisplay,
    #[error("cannot connect to {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Globals(#[from] GlobalError),
    #[error("the compositor has no seat: {0}")]
    NoSeat(BindError),
    #[error(
        "the compositor offers no idle notifications (neither ext-idle-notify-v1 nor \
         org_kde_kwin_idle)"
    )]
    NoProtocol,
    #[error(transparent)]
    Connection(#[from] WaylandError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error("watching the compositor's socket: {0}")]
    Poll(io::Error),
}

/// The socket of Wayland display `display`: a path as it is, a name in the runtime directory
/// (what libwayland does with `WAYLAND_DISPLAY`).
pub fn socket_path(display: &str, runtime_dir: Option<&Path>) -> Option<PathBuf> {
    let display = Path::new(display);
    if display.is_absolute() {
        Some(display.to_owned())
    } else {
        runtime_dir.map(|dir| dir.join(display))
    }
}

/// Events of the notification, in arrival order, until [`IdleWatch::next`] takes them.
#[derive(Default)]
struct Received(Vec<Activity>);

/// A subscription to the seat's idle notifications for one timeout.
pub struct IdleWatch {
    /// A duplicate of the connection's socket, registered with the runtime by the first
    /// [`IdleWatch::next`], as connecting happens off it.
    socket: Option<AsyncFd<OwnedFd>>,
    queue: EventQueue<Received>,
    received: Received,
    /// The protocol the notification came through.
    protocol: &'static str,
    connection: Connection,
}

impl IdleWatch {
    /// Connects to the compositor at `path` and asks to be told when the first seat has been
    /// idle for `timeout` (blocking: waits for the compositor's list of globals).
    pub fn connect(path: &Path, timeout: Duration) -> Result<IdleWatch, WaylandIdleError> {
        let stream = UnixStream::connect(path).map_err(|source| WaylandIdleError::Socket {
            path: path.to_owned(),
            source,
        })?;
        let connection = Connection::from_socket(stream)?;
        let (globals, queue) = registry_queue_init::<Received>(&connection)?;
        let handle = queue.handle();
        let seat: wl_seat::WlSeat = globals
            .bind(&handle, 1..=1, ())
            .map_err(WaylandIdleError::NoSeat)?;
        let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        // The notification objects live as long as the connection; their events are all
        // that is needed of them.
        let protocol =
            match globals.bind::<ext_idle_notifier_v1::ExtIdleNotifierV1, _, _>(&handle, 1..=2, ())
            {
                Ok(notifier) if notifier.version() >= 2 => {
                    notifier.get_input_idle_notification(millis, &seat, &handle, ());
                    "ext-idle-notify-v1"
                }
                Ok(notifier) => {
                    notifier.get_idle_notification(millis, &seat, &handle, ());
                    "ext-idle-notify-v1"
                }
                Err(_) => {
                    let idle: org_kde_kwin_idle::OrgKdeKwinIdle = globals
                        .bind(&handle, 1..=1, ())
                        .map_err(|_| WaylandIdleError::NoProtocol)?;
                    idle.get_idle_timeout(&seat, millis, &handle, ());
                    "org_kde_kwin_idle"
                }
            };
        connection.flush()?;
        Ok(IdleWatch {
            socket: None,
            queue,
            received: Received::default(),
            protocol,
            connection,
        })
    }

    /// Which protocol the compositor is asked through, for the log.
    pub fn protocol(&self) -> &'static str {
        self.protocol
    }

    /// The next event; an error once the connection fails (the compositor went away).
    pub async fn next(&mut self) -> Result<Activity, WaylandIdleError> {
        loop {
            if !self.received.0.is_empty() {
                return Ok(self.received.0.remove(0));
            }
            self.queue.dispatch_pending(&mut self.received)?;
            if !self.received.0.is_empty() {
                continue;
            }
            self.queue.flush()?;
            // None: events were queued meanwhile, dispatched on the next turn.
            let Some(read) = self.queue.prepare_read() else {
                continue;
            };
            let socket = match &mut self.socket {
                Some(socket) => socket,
                None => {
                    let fd = self
                        .connection
                        .backend()
                        .poll_fd()
                        .try_clone_to_owned()
                        .map_err(WaylandIdleError::Poll)?;
                    // SAFETY: the descriptor is our own duplicate, open for as long as the
                    // AsyncFd owns it.
                    let registered = unsafe { AsyncFd::register(fd) }
                        .map_err(|e| WaylandIdleError::Poll(e.into_parts().1))?;
                    self.socket.insert(registered)
                }
            };
            let mut ready = socket.readable().await.map_err(WaylandIdleError::Poll)?;
            match read.read() {
                Ok(_) => {}
                Err(WaylandError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.clear_ready();
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for Received {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // Globals added or removed later change nothing: the seat and notifier are bound.
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for Received {
    fn event(
        _: &mut Self,
        _: &wl_seat::WlSeat,
        _: wl_seat::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // Capabilities and name: the notification covers the seat whatever its devices.
    }
}

impl Dispatch<ext_idle_notifier_v1::ExtIdleNotifierV1, ()> for Received {
    fn event(
        _: &mut Self,
        _: &ext_idle_notifier_v1::ExtIdleNotifierV1,
        _: ext_idle_notifier_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // The notifier has no events.
    }
}

impl Dispatch<ext_idle_notification_v1::ExtIdleNotificationV1, ()> for Received {
    fn event(
        received: &mut Self,
        _: &ext_idle_notification_v1::ExtIdleNotificationV1,
        event: ext_idle_notification_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            ext_idle_notification_v1::Event::Idled => received.0.push(Activity::Idle),
            ext_idle_notification_v1::Event::Resumed => received.0.push(Activity::Resumed),
            _ => {}
        }
    }
}

impl Dispatch<org_kde_kwin_idle::OrgKdeKwinIdle, ()> for Received {
    fn event(
        _: &mut Self,
        _: &org_kde_kwin_idle::OrgKdeKwinIdle,
        _: org_kde_kwin_idle::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // The manager has no events.
    }
}

impl Dispatch<org_kde_kwin_idle_timeout::OrgKdeKwinIdleTimeout, ()> for Received {
    fn event(
        received: &mut Self,
        _: &org_kde_kwin_idle_timeout::OrgKdeKwinIdleTimeout,
        event: org_kde_kwin_idle_timeout::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            org_kde_kwin_idle_timeout::Event::Idle => received.0.push(Activity::Idle),
            org_kde_kwin_idle_timeout::Event::Resumed => received.0.push(Activity::Resumed),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_display_is_a_socket_path_or_a_name_in_the_runtime_directory() {
        let runtime = Path::new("/run/user/1000");
        assert_eq!(
            socket_path("wayland-0", Some(runtime)),
            Some(PathBuf::from("/run/user/1000/wayland-0"))
        );
        assert_eq!(
            socket_path("/tmp/compositor/wayland-1", Some(runtime)),
            Some(PathBuf::from("/tmp/compositor/wayland-1"))
        );
        assert_eq!(
            socket_path("/tmp/compositor/wayland-1", None),
            Some(PathBuf::from("/tmp/compositor/wayland-1"))
        );
        assert_eq!(socket_path("wayland-0", None), None, "nowhere to look");
    }
}
