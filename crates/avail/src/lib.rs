//! `avail`: the background agent and command line of the Avail presence client (issue 7,
//! blink-compat §1–§6 and §8). The protocol logic is in `avail-client` and `sip-ua`; this
//! crate moves bytes: [`session`] drives the SIP connection, [`agent`] owns the shared state
//! and the XCAP task, [`desktop_idle`] reads the desktop's idle time from the X server,
//! [`api`] is the local HTTP API, [`web`] the web UI served beside it, [`cli`] the commands
//! that call it.

pub mod agent;
pub mod api;
pub mod cli;
pub mod desktop_idle;
pub mod session;
pub mod wayland_idle;
pub mod web;
