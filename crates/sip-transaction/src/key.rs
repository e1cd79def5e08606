//! Transaction matching keys: §17.1.3 (responses to client transactions), §17.2.3 (requests
//! to server transactions, including the RFC 2543 fallback) and §9.2 (CANCEL to INVITE).

use sip_message::{Message, Method};

/// Branches starting with this were built by RFC 3261 elements and are unique (§8.1.1.7).
const MAGIC_COOKIE: &str = "z9hG4bK";

/// Identity of a server transaction. ACK is folded into INVITE so an ACK finds the INVITE
/// transaction it acknowledges; CANCEL keeps its own method so it is a transaction of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    Rfc3261 {
        branch: Box<str>,
        /// Lower-cased: the host part compares case-insensitively.
        sent_by: Box<str>,
        method: Method,
    },
    Rfc2543(Box<LegacyKey>),
}

/// §17.2.3's fallback for requests without the magic cookie.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LegacyKey {
    pub(crate) request_uri: Box<str>,
    pub(crate) to_tag: Option<Box<str>>,
    pub(crate) from_tag: Option<Box<str>>,
    pub(crate) call_id: Box<str>,
    pub(crate) cseq: u32,
    pub(crate) top_via: Box<str>,
    pub(crate) method: Method,
}

impl ServerKey {
    pub(crate) fn is_legacy(&self) -> bool {
        matches!(self, ServerKey::Rfc2543(_))
    }

    /// The same key for another method: how a CANCEL finds its INVITE (§9.2).
    pub(crate) fn with_method(&self, method: Method) -> ServerKey {
        match self {
            ServerKey::Rfc3261 {
                branch, sent_by, ..
            } => ServerKey::Rfc3261 {
                branch: branch.clone(),
                sent_by: sent_by.clone(),
                method,
            },
            ServerKey::Rfc2543(k) => ServerKey::Rfc2543(Box::new(LegacyKey {
                method,
                ..(**k).clone()
            })),
        }
    }

    /// For a legacy ACK carrying a To tag: the key its INVITE had if the INVITE was
    /// out-of-dialog (no To tag). The ACK's To tag comes from our response, so it is absent
    /// from the INVITE's key unless the INVITE was a re-INVITE in the same dialog.
    pub(crate) fn without_to_tag(&self) -> Option<ServerKey> {
        match self {
            ServerKey::Rfc2543(k) if k.to_tag.is_some() => {
                Some(ServerKey::Rfc2543(Box::new(LegacyKey {
                    to_tag: None,
                    ..(**k).clone()
                })))
            }
            _ => None,
        }
    }
}

/// What the server side needs from a request, extracted once.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo {
    pub(crate) method: Method,
    pub(crate) key: ServerKey,
    /// The request's To tag, kept only for legacy keys (where an ACK's To tag is checked
    /// against the tag of the response the transaction sent).
    pub(crate) to_tag: Option<Box<str>>,
}

impl RequestInfo {
    pub(crate) fn from_message(msg: &Message) -> Result<RequestInfo, &'static str> {
        let method = msg.method().ok_or("Not a request")?.clone();
        let via = msg.top_via().map_err(|_| "Missing or invalid Via header")?;
        let key_method = if method == Method::Ack {
            Method::Invite
        } else {
            method.clone()
        };
        match via.branch() {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => Ok(RequestInfo {
                method,
                key: ServerKey::Rfc3261 {
                    branch: branch.into(),
                    sent_by: via.sent_by().to_ascii_lowercase().into_boxed_str(),
                    method: key_method,
                },
                to_tag: None,
            }),
            _ => {
                let request_uri = msg.request_uri().ok_or("Not a request")?;
                let to_tag = msg
                    .to_header()
                    .map_err(|_| "Missing or invalid To header")?
                    .tag()
                    .map(Box::from);
                let from_tag = msg
                    .from_header()
                    .map_err(|_| "Missing or invalid From header")?
                    .tag()
                    .map(Box::from);
                let call_id = msg
                    .call_id()
                    .map_err(|_| "Missing or invalid Call-ID header")?;
                let cseq = msg.cseq().map_err(|_| "Missing or invalid CSeq header")?;
                Ok(RequestInfo {
                    method,
                    key: ServerKey::Rfc2543(Box::new(LegacyKey {
                        request_uri: request_uri.into(),
                        to_tag: to_tag.clone(),
                        from_tag,
                        call_id: call_id.into(),
                        cseq: cseq.seq,
                        top_via: via.text.into(),
                        method: key_method,
                    })),
                    to_tag,
                })
            }
        }
    }
}

/// Identity of a client transaction (§17.1.3): our branch plus the CSeq method, so a CANCEL
/// (same branch as its INVITE, §9.1) is a separate transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientKey {
    pub(crate) branch: Box<str>,
    pub(crate) method: Method,
}

/// A client key as its parts, so a response is matched with the branch borrowed from it:
/// the index of client transactions is searched once per response, and copying the branch
/// into a [`ClientKey`] for that would allocate each time.
pub(crate) trait ClientKeyView {
    fn branch(&self) -> &str;
    fn method(&self) -> &Method;
}

impl ClientKeyView for ClientKey {
    fn branch(&self) -> &str {
        &self.branch
    }
    fn method(&self) -> &Method {
        &self.method
    }
}

/// The key of the client transaction a response answers (its top Via's branch and CSeq
/// method), or of the one a request was sent in.
pub(crate) struct ResponseKey<'a> {
    branch: &'a str,
    method: Method,
}

impl<'a> ResponseKey<'a> {
    pub(crate) fn new(branch: &'a str, method: Method) -> ResponseKey<'a> {
        ResponseKey { branch, method }
    }

    pub(crate) fn of(msg: &'a Message) -> Option<ResponseKey<'a>> {
        Some(ResponseKey {
            branch: msg.top_via_branch()?,
            method: msg.cseq().ok()?.method,
        })
    }
}

impl ClientKeyView for ResponseKey<'_> {
    fn branch(&self) -> &str {
        self.branch
    }
    fn method(&self) -> &Method {
        &self.method
    }
}

impl<'a> std::borrow::Borrow<dyn ClientKeyView + 'a> for ClientKey {
    fn borrow(&self) -> &(dyn ClientKeyView + 'a) {
        self
    }
}

// A key and its view must hash and compare alike (the `Borrow` contract).
impl std::hash::Hash for dyn ClientKeyView + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.branch().hash(state);
        self.method().hash(state);
    }
}

impl std::hash::Hash for ClientKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self as &dyn ClientKeyView).hash(state);
    }
}

impl PartialEq for dyn ClientKeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.branch() == other.branch() && self.method() == other.method()
    }
}

impl Eq for dyn ClientKeyView + '_ {}

/// The To tag of a response we are sending, needed only to match legacy ACKs.
pub(crate) fn response_to_tag(response: &bytes::Bytes) -> Option<Box<str>> {
    let msg =
        Message::parse_headers_only(response.clone(), &sip_message::Limits::default()).ok()?;
    let to = msg.to_header().ok()?;
    to.tag().map(Box::from)
}
