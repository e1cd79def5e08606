//! `application/xcap-error+xml` bodies, the detail of XCAP 409 responses (RFC 4825 §11,
//! schema xcap-error.xsd §11.2). Elements appear in the schema's declaration order.

/// MIME type of an XCAP error body (RFC 4825 §15.2.4).
pub const CONTENT_TYPE: &str = "application/xcap-error+xml";

/// Namespace of the error body (RFC 4825 §15.2.5).
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:xcap-error";

/// One XCAP error condition with its optional human-readable phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XcapError {
    pub kind: XcapErrorKind,
    pub phrase: Option<String>,
}

/// The error conditions of RFC 4825 §11.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XcapErrorKind {
    NotWellFormed,
    NotXmlFrag,
    /// `ancestor`: HTTP URI of the closest existing ancestor of the missing parent.
    NoParent {
        ancestor: Option<String>,
    },
    SchemaValidationError,
    NotXmlAttValue,
    CannotInsert,
    CannotDelete,
    /// The schema requires at least one `<exists>`, hence `first` and `more`.
    UniquenessFailure {
        first: Exists,
        more: Vec<Exists>,
    },
    ConstraintFailure,
    NotUtf8,
}

/// A value that violated a uniqueness constraint (`<exists>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exists {
    /// Node selector (relative to the document) of the non-unique element or attribute.
    pub field: String,
    /// Suggested alternative values (`<alt-value>`).
    pub alt_values: Vec<String>,
}

impl XcapError {
    pub fn new(kind: XcapErrorKind) -> Self {
        XcapError { kind, phrase: None }
    }

    pub fn with_phrase(kind: XcapErrorKind, phrase: impl Into<String>) -> Self {
        XcapError {
            kind,
            phrase: Some(phrase.into()),
        }
    }

    /// The body as a complete UTF-8 XML document.
    pub fn to_xml(&self) -> String {
        to_xml(self)
    }
}

fn element_name(kind: &XcapErrorKind) -> &'static str {
    match kind {
        XcapErrorKind::NotWellFormed => "not-well-formed",
        XcapErrorKind::NotXmlFrag => "not-xml-frag",
        XcapErrorKind::NoParent { .. } => "no-parent",
        XcapErrorKind::SchemaValidationError => "schema-validation-error",
        XcapErrorKind::NotXmlAttValue => "not-xml-att-value",
        XcapErrorKind::CannotInsert => "cannot-insert",
        XcapErrorKind::CannotDelete => "cannot-delete",
        XcapErrorKind::UniquenessFailure { .. } => "uniqueness-failure",
        XcapErrorKind::ConstraintFailure => "constraint-failure",
        XcapErrorKind::NotUtf8 => "not-utf-8",
    }
}

/// Builds the `<xcap-error>` document for `error`.
pub fn to_xml(error: &XcapError) -> String {
    let name = element_name(&error.kind);
    let mut out = String::with_capacity(160);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-error xmlns=\"");
    out.push_str(NAMESPACE);
    out.push_str("\"><");
    out.push_str(name);
    if let Some(phrase) = &error.phrase {
        out.push_str(" phrase=\"");
        escape_into(&mut out, phrase, true);
        out.push('"');
    }
    let mut body = String::new();
    match &error.kind {
        XcapErrorKind::NoParent {
            ancestor: Some(ancestor),
        } => {
            body.push_str("<ancestor>");
            escape_into(&mut body, ancestor, false);
            body.push_str("</ancestor>");
        }
        XcapErrorKind::UniquenessFailure { first, more } => {
            for exists in std::iter::once(first).chain(more) {
                body.push_str("<exists field=\"");
                escape_into(&mut body, &exists.field, true);
                body.push_str("\">");
                for alt in &exists.alt_values {
                    body.push_str("<alt-value>");
                    escape_into(&mut body, alt, false);
                    body.push_str("</alt-value>");
                }
                body.push_str("</exists>");
            }
        }
        _ => {}
    }
    if body.is_empty() {
        out.push_str("/>");
    } else {
        out.push('>');
        out.push_str(&body);
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    out.push_str("</xcap-error>\n");
    out
}

/// Escapes markup characters; in attributes also whitespace that normalisation would lose.
/// Characters XML 1.0 cannot carry at all are replaced by U+FFFD so the body stays well-formed.
pub(crate) fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{to_xml, Exists, XcapError, XcapErrorKind};

    #[test]
    fn phrase_is_escaped_in_an_empty_element() {
        let error =
            XcapError::with_phrase(XcapErrorKind::SchemaValidationError, "a<b & \"c\"\n\u{1}");
        assert_eq!(
            to_xml(&error),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-error xmlns=\"urn:ietf:params:xml:ns:xcap-error\">\
             <schema-validation-error phrase=\"a&lt;b &amp; &quot;c&quot;&#10;\u{FFFD}\"/></xcap-error>\n"
        );
    }

    #[test]
    fn no_parent_carries_the_ancestor() {
        let error = XcapError::new(XcapErrorKind::NoParent {
            ancestor: Some("http://x/a?b&c".into()),
        });
        assert!(to_xml(&error)
            .contains("<no-parent><ancestor>http://x/a?b&amp;c</ancestor></no-parent>"));
        let bare = XcapError::new(XcapErrorKind::NoParent { ancestor: None });
        assert!(to_xml(&bare).contains("<no-parent/>"));
    }

    #[test]
    fn uniqueness_failure_lists_every_field_with_alternatives() {
        let error = XcapError::with_phrase(
            XcapErrorKind::UniquenessFailure {
                first: Exists {
                    field: "rls-services/service/@uri".into(),
                    alt_values: vec!["sip:a1@x".into(), "sip:a2@x".into()],
                },
                more: vec![Exists {
                    field: "f2".into(),
                    alt_values: vec![],
                }],
            },
            "taken",
        );
        assert!(to_xml(&error).contains(
            "<uniqueness-failure phrase=\"taken\"><exists field=\"rls-services/service/@uri\">\
             <alt-value>sip:a1@x</alt-value><alt-value>sip:a2@x</alt-value></exists>\
             <exists field=\"f2\"></exists></uniqueness-failure>"
        ));
    }
}
