//! NOTIFY bodies of list subscriptions (RFC 4662 §5.1–§5.3): a `multipart/related` body whose
//! root is the RLMI document, followed by one part per resource state it references by `cid`.
//!
//! URIs that would make the RLMI document invalid are percent-encoded (see [`rlmi_uri`]).
//!
//! The body cap keeps the RLMI document complete (every included resource and instance is
//! listed) and drops state parts that do not fit; their instances go without `cid` and the
//! caller sends them again in a following NOTIFY.

use std::borrow::Cow;

use simple_payloads::multipart::{Part, Related};
use simple_payloads::rlmi::{self, Instance, InstanceState, Name, Resource, Rlmi};
use simple_payloads::validate::is_any_uri;
use sip_subscription::Body;

/// One resource as a NOTIFY shows it.
#[derive(Debug, Clone)]
pub(crate) struct ResourceView<'a> {
    pub uri: &'a str,
    pub name: Option<&'a str>,
    /// None: no instance (the back-end state is not known, or never will be).
    pub instance: Option<InstanceView<'a>>,
}

#[derive(Debug, Clone)]
pub(crate) struct InstanceView<'a> {
    pub id: &'a str,
    pub state: InstanceState,
    pub reason: Option<&'static str>,
    pub body: Option<&'a Body>,
}

/// A rendered NOTIFY body and which of its resources lost their state part to the cap.
pub(crate) struct Rendered {
    pub body: Body,
    /// Indices (into the rendered resources) whose body did not fit.
    pub deferred: Vec<usize>,
}

pub(crate) struct Header<'a> {
    pub list_uri: &'a str,
    pub version: u32,
    pub full_state: bool,
    /// Unique prefix for this body's Content-IDs and boundary.
    pub id_prefix: &'a str,
    pub cid_domain: &'a str,
    pub max_body_bytes: usize,
}

pub(crate) fn render(header: &Header<'_>, resources: &[ResourceView<'_>]) -> Rendered {
    let mut parts = Vec::new();
    let mut deferred = Vec::new();
    let mut used = 0usize;
    let mut rlmi_resources = Vec::with_capacity(resources.len());
    for (index, view) in resources.iter().enumerate() {
        let instances = match &view.instance {
            None => Vec::new(),
            Some(instance) => {
                let mut cid = None;
                if let Some(body) = instance.body {
                    let size = body.data.len() + body.content_type.len() + 128;
                    if used + size <= header.max_body_bytes {
                        used += size;
                        let id = format!("{}.{}@{}", header.id_prefix, index, header.cid_domain);
                        parts.push(Part {
                            content_type: body.content_type.to_string(),
                            content_id: id.clone(),
                            body: body.data.to_vec(),
                        });
                        cid = Some(id);
                    } else if size <= header.max_body_bytes {
                        deferred.push(index);
                    }
                }
                vec![Instance {
                    id: instance.id.to_owned(),
                    state: instance.state,
                    reason: instance.reason.map(str::to_owned),
                    cid,
                }]
            }
        };
        rlmi_resources.push(Resource {
            uri: rlmi_uri(view.uri).into_owned(),
            names: view
                .name
                .map(|text| Name {
                    text: text.to_owned(),
                    lang: None,
                })
                .into_iter()
                .collect(),
            instances,
        });
    }
    let document = Rlmi {
        uri: rlmi_uri(header.list_uri).into_owned(),
        version: header.version,
        full_state: header.full_state,
        cid: None,
        names: Vec::new(),
        resources: rlmi_resources,
    };
    let root = Part {
        content_type: rlmi::CONTENT_TYPE.to_owned(),
        content_id: format!("{}@{}", header.id_prefix, header.cid_domain),
        body: document.to_xml().into_bytes(),
    };
    parts.insert(0, root);
    let related = Related::with_root_first(parts);
    let (content_type, data) = related.to_bytes(&format!("{}-boundary", header.id_prefix));
    Rendered {
        body: Body::new(&content_type, data),
        deferred,
    }
}

/// URIs go into RLMI as the list writes them (Blink compares them as strings); one that is
/// not a valid xs:anyURI once decoded (`100%`, `a:b` without scheme) or holds characters XML
/// cannot carry (a decoded `%00`) is percent-encoded like an XCAP anyURI instead, so the
/// document stays schema-valid and nothing is lost.
pub fn rlmi_uri(uri: &str) -> Cow<'_, str> {
    let xml_safe = !uri.chars().any(|c| {
        matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
    });
    if xml_safe && is_any_uri(uri) {
        Cow::Borrowed(uri)
    } else {
        Cow::Owned(simple_payloads::encode_any_uri(uri))
    }
}
