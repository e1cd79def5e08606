//! Watcher information documents, `application/watcherinfo+xml` (RFC 3858 §4, the state
//! carried by the `presence.winfo` package of RFC 3857): building on the server side, reading on
//! the client side.
//!
//! Blink reads only the `watcher-list` whose `resource` is exactly `sip:user@domain` with
//! `package="presence"` (blink-compat §4.4), so resources are written as given, not
//! percent-encoded.

use std::fmt::Write as _;

use roxmltree::{Document, Node, ParsingOptions};

use crate::xcap_error::escape_into;

/// `urn:ietf:params:xml:ns:watcherinfo` (RFC 3858 §5).
pub const WATCHERINFO_NS: &str = "urn:ietf:params:xml:ns:watcherinfo";

/// Largest document [`WatcherInfo::parse`] accepts.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Most XML nodes in a parsed document.
const MAX_NODES: u32 = 200_000;

/// Whether a document carries the full state or changes since the previous version
/// (RFC 3858 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Every watcher of every listed resource.
    Full,
    /// Only watchers whose state changed.
    Partial,
}

/// The subscription state of a watcher (RFC 3858 §4.4, RFC 3857 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatcherStatus {
    /// Awaiting the presentity's decision.
    Pending,
    /// Authorized.
    Active,
    /// Was pending and has since ended; kept so the presentity still learns of the attempt.
    Waiting,
    /// Ended.
    Terminated,
}

/// The event that caused the last status change (RFC 3857 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatcherEvent {
    /// A subscription was created.
    Subscribe,
    /// The presentity (or its policy) approved it.
    Approved,
    /// Deactivated; the watcher may re-subscribe.
    Deactivated,
    /// Deactivated; the watcher should wait before re-subscribing.
    Probation,
    /// The presentity rejected it.
    Rejected,
    /// It expired.
    Timeout,
    /// A pending subscription waited too long for a decision.
    Giveup,
    /// The resource no longer exists.
    Noresource,
}

macro_rules! keywords {
    ($ty:ty { $($variant:ident = $word:literal),+ $(,)? }) => {
        impl $ty {
            /// The keyword used in documents.
            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $word),+ }
            }

            /// Reads the keyword.
            pub fn parse(word: &str) -> Option<Self> {
                match word { $($word => Some(<$ty>::$variant),)+ _ => None }
            }
        }
    };
}

keywords!(State { Full = "full", Partial = "partial" });
keywords!(WatcherStatus {
    Pending = "pending",
    Active = "active",
    Waiting = "waiting",
    Terminated = "terminated",
});
keywords!(WatcherEvent {
    Subscribe = "subscribe",
    Approved = "approved",
    Deactivated = "deactivated",
    Probation = "probation",
    Rejected = "rejected",
    Timeout = "timeout",
    Giveup = "giveup",
    Noresource = "noresource",
});

/// One `<watcher>` (RFC 3858 §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watcher {
    /// Identifies the subscription; stable across documents (`xs:string`).
    pub id: String,
    /// The watcher's state.
    pub status: WatcherStatus,
    /// Why it reached that state.
    pub event: WatcherEvent,
    /// The watcher's URI (the element's content).
    pub uri: String,
    /// `display-name`, as the watcher's From header gave it.
    pub display_name: Option<String>,
    /// `duration-subscribed`: seconds the subscription has existed.
    pub duration_subscribed: Option<u64>,
    /// `expiration`: seconds until it expires.
    pub expiration: Option<u64>,
}

/// One `<watcher-list>`: the watchers of one resource for one package (RFC 3858 §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherList {
    /// The watched resource, e.g. `sip:alice@example.com`.
    pub resource: String,
    /// The event package watched, e.g. `presence`.
    pub package: String,
    /// The watchers.
    pub watchers: Vec<Watcher>,
}

/// A `watcherinfo` document (RFC 3858 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherInfo {
    /// Increases by one with every document sent in a subscription, starting at 0.
    pub version: u64,
    /// Full or partial state.
    pub state: State,
    /// One list per resource and package.
    pub lists: Vec<WatcherList>,
}

/// Why a watcherinfo document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatcherInfoError {
    /// Larger than [`MAX_DOCUMENT_BYTES`].
    #[error("the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    /// Not well-formed XML, a DTD, or too many nodes.
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// The document element is not `{urn:ietf:params:xml:ns:watcherinfo}watcherinfo`.
    #[error("the document element is not <watcherinfo>")]
    NotWatcherInfo,
    /// A required attribute is missing or has a value the schema does not allow.
    #[error("<{element}> has a missing or invalid {attribute}")]
    BadAttribute {
        /// The element's local name.
        element: &'static str,
        /// The attribute's name.
        attribute: &'static str,
    },
}

impl WatcherInfo {
    /// Serialises the document, e.g.
    /// `<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">`.
    pub fn to_xml(&self) -> String {
        let watchers: usize = self.lists.iter().map(|l| l.watchers.len()).sum();
        let mut out = String::with_capacity(160 + 80 * self.lists.len() + 120 * watchers);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<watcherinfo xmlns=\"");
        out.push_str(WATCHERINFO_NS);
        let _ = writeln!(
            out,
            "\" version=\"{}\" state=\"{}\">",
            self.version,
            self.state.as_str()
        );
        for list in &self.lists {
            out.push_str("  <watcher-list resource=\"");
            escape_into(&mut out, &list.resource, true);
            out.push_str("\" package=\"");
            escape_into(&mut out, &list.package, true);
            out.push_str("\">\n");
            for watcher in &list.watchers {
                write_watcher(&mut out, watcher);
            }
            out.push_str("  </watcher-list>\n");
        }
        out.push_str("</watcherinfo>\n");
        out
    }

    /// Reads a document. Extension elements (RFC 3858 allows them after the lists and watchers)
    /// are skipped; unknown `status` or `event` values are errors, as the schema makes them.
    pub fn parse(text: &str) -> Result<WatcherInfo, WatcherInfoError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(WatcherInfoError::TooLarge);
        }
        let options = ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..ParsingOptions::default()
        };
        let doc = Document::parse_with_options(text, options)
            .map_err(|e| WatcherInfoError::NotWellFormed(e.to_string()))?;
        let root = doc.root_element();
        if !is(root, "watcherinfo") {
            return Err(WatcherInfoError::NotWatcherInfo);
        }
        let bad = |element, attribute| WatcherInfoError::BadAttribute { element, attribute };
        let version = attr(root, "version")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(bad("watcherinfo", "version"))?;
        let state = attr(root, "state")
            .and_then(State::parse)
            .ok_or(bad("watcherinfo", "state"))?;
        let mut lists = Vec::new();
        for list in root.children().filter(|n| is(*n, "watcher-list")) {
            let resource = attr(list, "resource").ok_or(bad("watcher-list", "resource"))?;
            let package = attr(list, "package").ok_or(bad("watcher-list", "package"))?;
            let mut watchers = Vec::new();
            for watcher in list.children().filter(|n| is(*n, "watcher")) {
                watchers.push(read_watcher(watcher)?);
            }
            lists.push(WatcherList {
                resource: resource.to_owned(),
                package: package.to_owned(),
                watchers,
            });
        }
        Ok(WatcherInfo {
            version,
            state,
            lists,
        })
    }
}

fn write_watcher(out: &mut String, watcher: &Watcher) {
    out.push_str("    <watcher id=\"");
    escape_into(out, &watcher.id, true);
    let _ = write!(
        out,
        "\" status=\"{}\" event=\"{}\"",
        watcher.status.as_str(),
        watcher.event.as_str()
    );
    if let Some(name) = &watcher.display_name {
        out.push_str(" display-name=\"");
        escape_into(out, name, true);
        out.push('"');
    }
    if let Some(seconds) = watcher.duration_subscribed {
        let _ = write!(out, " duration-subscribed=\"{seconds}\"");
    }
    if let Some(seconds) = watcher.expiration {
        let _ = write!(out, " expiration=\"{seconds}\"");
    }
    out.push('>');
    escape_into(out, &watcher.uri, false);
    out.push_str("</watcher>\n");
}

fn read_watcher(node: Node<'_, '_>) -> Result<Watcher, WatcherInfoError> {
    let bad = |attribute| WatcherInfoError::BadAttribute {
        element: "watcher",
        attribute,
    };
    let seconds = |name| match attr(node, name) {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| bad(name)),
    };
    Ok(Watcher {
        id: attr(node, "id").ok_or(bad("id"))?.to_owned(),
        status: attr(node, "status")
            .and_then(WatcherStatus::parse)
            .ok_or(bad("status"))?,
        event: attr(node, "event")
            .and_then(WatcherEvent::parse)
            .ok_or(bad("event"))?,
        uri: node.text().unwrap_or_default().trim().to_owned(),
        display_name: node.attribute("display-name").map(str::to_owned),
        duration_subscribed: seconds("duration-subscribed")?,
        expiration: seconds("expiration")?,
    })
}

fn is(node: Node<'_, '_>, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(WATCHERINFO_NS)
        && node.tag_name().name() == name
}

/// An attribute value with the whitespace that its schema type collapses removed.
fn attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attribute(name).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WatcherInfo {
        WatcherInfo {
            version: 7,
            state: State::Full,
            lists: vec![WatcherList {
                resource: "sip:alice@example.com".into(),
                package: "presence".into(),
                watchers: vec![
                    Watcher {
                        id: "w1".into(),
                        status: WatcherStatus::Pending,
                        event: WatcherEvent::Subscribe,
                        uri: "sip:dave@example.net".into(),
                        display_name: Some("Dave \"D\" <&>".into()),
                        duration_subscribed: Some(12),
                        expiration: Some(3588),
                    },
                    Watcher {
                        id: "w2".into(),
                        status: WatcherStatus::Active,
                        event: WatcherEvent::Approved,
                        uri: "sip:bob@example.com".into(),
                        display_name: None,
                        duration_subscribed: None,
                        expiration: None,
                    },
                ],
            }],
        }
    }

    #[test]
    fn writes_the_resource_and_attributes_verbatim() {
        let xml = sample().to_xml();
        assert!(xml.contains(
            "<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"7\" state=\"full\">"
        ));
        assert!(
            xml.contains("<watcher-list resource=\"sip:alice@example.com\" package=\"presence\">")
        );
        assert!(xml.contains(
            "<watcher id=\"w1\" status=\"pending\" event=\"subscribe\" \
             display-name=\"Dave &quot;D&quot; &lt;&amp;&gt;\" duration-subscribed=\"12\" \
             expiration=\"3588\">sip:dave@example.net</watcher>"
        ));
        assert!(xml.contains(
            "<watcher id=\"w2\" status=\"active\" event=\"approved\">sip:bob@example.com</watcher>"
        ));
    }

    #[test]
    fn parse_inverts_to_xml() {
        let info = sample();
        assert_eq!(WatcherInfo::parse(&info.to_xml()), Ok(info));
        let empty = WatcherInfo {
            version: 0,
            state: State::Partial,
            lists: vec![],
        };
        assert_eq!(WatcherInfo::parse(&empty.to_xml()), Ok(empty));
    }

    #[test]
    fn every_status_and_event_keyword_round_trips() {
        use WatcherEvent::*;
        use WatcherStatus::*;
        for status in [Pending, Active, Waiting, Terminated] {
            assert_eq!(WatcherStatus::parse(status.as_str()), Some(status));
        }
        for event in [
            Subscribe,
            Approved,
            Deactivated,
            Probation,
            Rejected,
            Timeout,
            Giveup,
            Noresource,
        ] {
            assert_eq!(WatcherEvent::parse(event.as_str()), Some(event));
        }
        assert_eq!(WatcherEvent::parse("Subscribe"), None);
    }

    #[test]
    fn parses_a_foreign_document_with_prefixes_and_extensions() {
        let text = r#"<w:watcherinfo xmlns:w="urn:ietf:params:xml:ns:watcherinfo" version=" 3 " state="partial">
            <w:watcher-list resource="sip:alice@example.com" package="presence">
              <w:watcher id="x" status="waiting" event="giveup" xml:lang="en"> sips:eve@example.org </w:watcher>
              <ext:thing xmlns:ext="urn:example"/>
            </w:watcher-list>
            <ext:other xmlns:ext="urn:example"/>
        </w:watcherinfo>"#;
        let info = WatcherInfo::parse(text).unwrap();
        assert_eq!(info.version, 3);
        assert_eq!(info.state, State::Partial);
        let watcher = &info.lists[0].watchers[0];
        assert_eq!(watcher.uri, "sips:eve@example.org");
        assert_eq!(
            (watcher.status, watcher.event),
            (WatcherStatus::Waiting, WatcherEvent::Giveup)
        );
    }

    #[test]
    fn rejects_bad_documents() {
        let ns = WATCHERINFO_NS;
        let cases = [
            (String::from("<watcherinfo"), "not well-formed"),
            (String::from("<watcherinfo xmlns='urn:x' version='0' state='full'/>"), "not <watcherinfo>"),
            (format!("<watcherinfo xmlns='{ns}' version='-1' state='full'/>"), "version"),
            (format!("<watcherinfo xmlns='{ns}' version='0' state='all'/>"), "state"),
            (
                format!(
                    "<watcherinfo xmlns='{ns}' version='0' state='full'><watcher-list package='presence'/></watcherinfo>"
                ),
                "resource",
            ),
            (
                format!(
                    "<watcherinfo xmlns='{ns}' version='0' state='full'><watcher-list resource='sip:a@b' package='presence'>\
                     <watcher id='w' status='gone' event='timeout'>sip:c@d</watcher></watcher-list></watcherinfo>"
                ),
                "status",
            ),
            (
                format!(
                    "<watcherinfo xmlns='{ns}' version='0' state='full'><watcher-list resource='sip:a@b' package='presence'>\
                     <watcher id='w' status='active' event='approved' expiration='soon'>sip:c@d</watcher></watcher-list></watcherinfo>"
                ),
                "expiration",
            ),
        ];
        for (text, expected) in cases {
            let error = WatcherInfo::parse(&text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let big = " ".repeat(MAX_DOCUMENT_BYTES + 1);
        assert_eq!(WatcherInfo::parse(&big), Err(WatcherInfoError::TooLarge));
    }
}
