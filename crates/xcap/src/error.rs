//! Error conditions of the XCAP engine: the RFC 4825 §11 `<xcap-error>` conditions (409), plus the
//! plain HTTP outcomes an operation can end in (404, 405, 413, 415; §8.2.2, §8.4). URI errors are
//! separate ([`UriError`]) because they happen before any document is loaded.

use thiserror::Error;

/// One value that violated a uniqueness constraint (RFC 4825 §11.2 `<exists>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniquenessConflict {
    /// Which field is not unique, as a node-selector-like path (e.g. `resource-lists/list/@name`).
    pub field: String,
    /// Values the client could use instead; may be empty.
    pub alt_values: Vec<String>,
}

/// Why an application usage's schema validator rejected a document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationFailure {
    /// Human-readable detail for the `phrase` attribute.
    pub phrase: Option<String>,
}

/// Why an application usage's semantic constraints (RFC 4825 §5.4) rejected a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintFailure {
    /// `<uniqueness-failure>`, one entry per offending field.
    Uniqueness(Vec<UniquenessConflict>),
    /// `<constraint-failure>` with an optional phrase.
    Other(Option<String>),
}

/// Outcome of an XCAP operation that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XcapError {
    /// The selected document, element, attribute or namespace set does not exist (404).
    #[error("not found")]
    NotFound,
    /// The method is not allowed on this resource (405, with `Allow`).
    #[error("method not allowed; allowed: {allow}")]
    MethodNotAllowed {
        /// Value for the `Allow` header.
        allow: &'static str,
    },
    /// The body's content type does not fit the resource (415).
    #[error("unsupported media type, expected {expected}")]
    UnsupportedMediaType {
        /// The content type this resource accepts.
        expected: String,
    },
    /// The body or the resulting document exceeds [`crate::Limits`] (413).
    #[error("request or resulting document too large")]
    TooLarge,
    /// `<not-well-formed>`: the body is not well-formed XML.
    #[error("not well-formed: {phrase}")]
    NotWellFormed {
        /// Parser detail.
        phrase: String,
    },
    /// `<not-xml-frag>`: an element PUT body is not exactly one XML element.
    #[error("body is not a single XML element")]
    NotXmlFrag,
    /// `<no-parent>`: the element or document to insert into does not exist.
    #[error("no parent")]
    NoParent {
        /// Closest existing ancestor as a path relative to the XCAP root (already
        /// percent-encoded); `None` when not even the document exists.
        ancestor: Option<String>,
    },
    /// `<schema-validation-error>`.
    #[error("schema validation error")]
    SchemaValidation(ValidationFailure),
    /// `<not-xml-att-value>`: an attribute PUT body is not a valid attribute value.
    #[error("body is not a valid XML attribute value")]
    NotXmlAttValue,
    /// `<cannot-insert>`: a GET after the PUT would not return the PUT content (§8.2.5).
    #[error("cannot insert: {phrase}")]
    CannotInsert {
        /// Why the insertion is not idempotent.
        phrase: &'static str,
    },
    /// `<cannot-delete>`: the DELETE would not be idempotent (§8.4).
    #[error("cannot delete: {phrase}")]
    CannotDelete {
        /// Why the deletion is not idempotent.
        phrase: &'static str,
    },
    /// `<uniqueness-failure>`.
    #[error("uniqueness failure")]
    Uniqueness(Vec<UniquenessConflict>),
    /// `<constraint-failure>`.
    #[error("constraint failure")]
    Constraint {
        /// Optional detail.
        phrase: Option<String>,
    },
    /// `<not-utf-8>`: the body, or the resulting document, is not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// The stored document could not be parsed; a server-side fault (500).
    #[error("stored document is corrupt: {0}")]
    CorruptDocument(String),
}

impl XcapError {
    /// HTTP status code for the response.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::TooLarge => 413,
            Self::UnsupportedMediaType { .. } => 415,
            Self::CorruptDocument(_) => 500,
            _ => 409,
        }
    }

    /// Name of the RFC 4825 §11 error element for a 409 body, `None` for other statuses.
    pub fn error_element(&self) -> Option<&'static str> {
        Some(match self {
            Self::NotWellFormed { .. } => "not-well-formed",
            Self::NotXmlFrag => "not-xml-frag",
            Self::NoParent { .. } => "no-parent",
            Self::SchemaValidation(_) => "schema-validation-error",
            Self::NotXmlAttValue => "not-xml-att-value",
            Self::CannotInsert { .. } => "cannot-insert",
            Self::CannotDelete { .. } => "cannot-delete",
            Self::Uniqueness(_) => "uniqueness-failure",
            Self::Constraint { .. } => "constraint-failure",
            Self::NotUtf8 => "not-utf-8",
            _ => return None,
        })
    }
}

impl From<ConstraintFailure> for XcapError {
    fn from(f: ConstraintFailure) -> Self {
        match f {
            ConstraintFailure::Uniqueness(c) => Self::Uniqueness(c),
            ConstraintFailure::Other(phrase) => Self::Constraint { phrase },
        }
    }
}

/// An XCAP request URI that cannot be mapped to a resource (RFC 4825 §6).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UriError {
    /// The path does not have the `auid/(global|users/xui)/document` shape.
    #[error("not an XCAP document path: {0}")]
    BadPath(&'static str),
    /// A path segment or the node selector is not UTF-8 after percent-decoding.
    #[error("URI is not UTF-8 after percent-decoding")]
    NotUtf8,
    /// The node selector does not follow the §6.3 grammar.
    #[error("invalid node selector: {0}")]
    BadSelector(&'static str),
    /// A prefix in the node selector has no `xmlns()` binding in the query (§6.4).
    #[error("unbound namespace prefix {0:?}")]
    UnboundPrefix(String),
    /// The query is not a sequence of `xmlns(prefix=uri)` parts.
    #[error("invalid query: {0}")]
    BadQuery(&'static str),
    /// The URI exceeds [`crate::Limits`].
    #[error("URI exceeds limits")]
    TooLong,
}

impl UriError {
    /// HTTP status code: 404 for paths that name nothing, 414 for oversize, else 400.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadPath(_) => 404,
            Self::TooLong => 414,
            _ => 400,
        }
    }
}
