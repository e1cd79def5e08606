//! The agent's local web UI and the guard in front of every route of its HTTP server.
//!
//! The UI is three static files under `crates/avail/ui/`, compiled into the binary and served
//! beside the JSON API (`GET /`, `/app.js`, `/style.css`); the page does everything through
//! that API. The server listens on loopback, but any web site the user visits can make the
//! browser send requests to 127.0.0.1, so [`loopback_only`] puts two checks in front of API and
//! UI alike:
//!
//! - DNS rebinding: a page of `evil.example` whose name is made to resolve to 127.0.0.1 talks
//!   to the agent as a same-origin page, but its requests carry `Host: evil.example`; only
//!   `127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT` (and the agent's own loopback address)
//!   are answered, anything else gets 421 Misdirected Request.
//! - Cross-site requests: a form or `fetch` from another site reaches the agent with that
//!   site's `Origin`; a state-changing request (not GET, HEAD or OPTIONS) whose `Origin` is not
//!   `http://` + an accepted host gets 403. Requests without `Origin` (the CLI, curl) pass:
//!   browsers send it on every such request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    AsHeaderName, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, ORIGIN,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::ApiError;

/// The page may load only its own script and style, show avatars received as base64
/// (`data:`), and talk only to its own origin; no other site may frame it.
const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One file of the UI.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

static ASSETS: [Asset; 3] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../ui/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../ui/app.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../ui/style.css"),
    },
];

impl Asset {
    fn response(&'static self) -> Response {
        (
            [
                (CONTENT_TYPE, self.content_type),
                // Revalidate every time, so a new agent's UI replaces the old one at once.
                (CACHE_CONTROL, "no-cache"),
                (X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
                (REFERRER_POLICY, "no-referrer"),
            ],
            self.body,
        )
            .into_response()
    }
}

/// The UI's files, each at its own path.
pub fn pages() -> Router {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { asset.response() }))
    })
}

/// The address to reach an agent listening on `api_addr` (`IP:PORT` as written to
/// `agent.addr`, or a name with a port): a wildcard address is reached through loopback.
pub fn local_authority(api_addr: &str) -> String {
    match api_addr.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let loopback = match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            SocketAddr::new(loopback, addr.port()).to_string()
        }
        _ => api_addr.to_owned(),
    }
}

/// The web UI's address for an agent listening on `api_addr`.
pub fn ui_url(api_addr: &str) -> String {
    format!("http://{}/", local_authority(api_addr))
}

/// The `Host` values the agent answers: its port on the loopback names.
struct LocalHosts {
    /// `host:port`, compared ignoring case as host names are.
    accepted: Vec<String>,
}

impl LocalHosts {
    fn new(api_addr: SocketAddr) -> LocalHosts {
        let port = api_addr.port();
        let mut accepted: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|name| format!("{name}:{port}"))
            .collect();
        // Bound to another loopback address such as 127.0.0.2: that address too.
        let own = api_addr.to_string();
        if api_addr.ip().is_loopback() && !accepted.contains(&own) {
            accepted.push(own);
        }
        LocalHosts { accepted }
    }

    fn accepts_host(&self, host: &str) -> bool {
        self.accepted.iter().any(|a| a.eq_ignore_ascii_case(host))
    }

    fn accepts_origin(&self, origin: &str) -> bool {
        origin
            .strip_prefix("http://")
            .is_some_and(|host| self.accepts_host(host))
    }
}

fn header(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

async fn check_request(
    State(hosts): State<Arc<LocalHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if !header(headers, HOST).is_some_and(|host| hosts.accepts_host(host)) {
        return ApiError(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this agent answers only requests for {}",
                hosts.accepted.join(", ")
            ),
        )
        .into_response();
    }
    if changes_state(request.method())
        && header(headers, ORIGIN).is_some_and(|origin| !hosts.accepts_origin(origin))
    {
        return ApiError(
            StatusCode::FORBIDDEN,
            "cross-site request refused: the Origin is not this agent's".to_owned(),
        )
        .into_response();
    }
    next.run(request).await
}

/// `router` answering only requests addressed to the agent listening on `api_addr` through a
/// loopback name, and refusing state changes from other sites' pages.
pub fn loopback_only(router: Router, api_addr: SocketAddr) -> Router {
    router.layer(from_fn_with_state(
        Arc::new(LocalHosts::new(api_addr)),
        check_request,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_the_agents_port_are_accepted() {
        let hosts = LocalHosts::new("127.0.0.1:7000".parse().unwrap());
        for host in [
            "127.0.0.1:7000",
            "localhost:7000",
            "LOCALHOST:7000",
            "[::1]:7000",
        ] {
            assert!(hosts.accepts_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:7000",
            "127.0.0.1",
            "127.0.0.1:7001",
            "localhost.evil.example:7000",
            "",
        ] {
            assert!(!hosts.accepts_host(host), "{host}");
        }
        assert!(hosts.accepts_origin("http://localhost:7000"));
        for origin in [
            "https://localhost:7000",
            "http://evil.example",
            "null",
            "http://127.0.0.1:7000.evil.example",
        ] {
            assert!(!hosts.accepts_origin(origin), "{origin}");
        }
    }

    #[test]
    fn another_loopback_address_is_accepted_a_wildcard_one_is_not() {
        let own = LocalHosts::new("127.0.0.2:7000".parse().unwrap());
        assert!(own.accepts_host("127.0.0.2:7000"));
        let wildcard = LocalHosts::new("0.0.0.0:7000".parse().unwrap());
        assert!(!wildcard.accepts_host("0.0.0.0:7000"));
        assert!(wildcard.accepts_host("127.0.0.1:7000"));
    }

    #[test]
    fn a_wildcard_address_is_reached_through_loopback() {
        assert_eq!(ui_url("127.0.0.1:7000"), "http://127.0.0.1:7000/");
        assert_eq!(ui_url("0.0.0.0:7000"), "http://127.0.0.1:7000/");
        assert_eq!(ui_url("[::]:7000"), "http://[::1]:7000/");
        assert_eq!(ui_url("localhost:7000"), "http://localhost:7000/");
    }
}
