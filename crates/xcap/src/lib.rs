//! Sans-IO XCAP engine (RFC 4825): request URIs and node selectors (§6), document, element,
//! attribute and namespace operations with the idempotency checks (§7, §8, §10), error
//! conditions (§11), ETags and conditional requests (§7.11, §8.5, RFC 9110 §13), application
//! usage hooks (§5), server-generated xcap-caps (§12) and OMA xcap-directory documents, and
//! change events.
//!
//! No HTTP, storage or clock lives here. The server shell parses the request into an
//! [`XcapUri`], loads the document and its ETag, calls [`check_preconditions`] and then
//! [`Engine::get`], [`Engine::put`] or [`Engine::delete`], stores the result with a
//! compare-and-swap on the ETag ([`etag_for`]) and publishes a [`DocumentChange`].

mod change;
mod error;
mod etag;
mod generated;
mod ops;
mod selector;
mod uri;
mod usage;

pub use change::DocumentChange;
pub use error::{ConstraintFailure, UniquenessConflict, UriError, ValidationFailure, XcapError};
pub use etag::{check_preconditions, etag_for, Method, Precondition};
pub use generated::{xcap_caps, xcap_directory, DirectoryEntry};
pub use ops::{
    DeleteOutcome, Engine, PutOutcome, Selected, ATTRIBUTE_TYPE, ELEMENT_TYPE, NAMESPACES_TYPE,
};
pub use selector::{AttrName, NameTest, NodeSelector, Predicate, Step, Terminal};
pub use uri::{Tree, XcapUri};
pub use usage::{resource_lists_uniqueness, ApplicationUsage, ConstraintContext};

/// Bounds on attacker-controlled input; every operation checks them before doing work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body and largest stored document, in bytes.
    pub max_document_bytes: usize,
    /// Largest number of XML nodes in a parsed document or body.
    pub max_nodes: u32,
    /// Longest request path or query, in bytes.
    pub max_uri_bytes: usize,
    /// Longest decoded node selector, in bytes.
    pub max_selector_bytes: usize,
    /// Most location steps in a node selector.
    pub max_steps: usize,
    /// Most `xmlns()` bindings in a query.
    pub max_namespace_bindings: usize,
}

impl Default for Limits {
    /// Room for Blink's largest documents (status icons of about 300 KiB of base64) with margin.
    fn default() -> Self {
        Limits {
            max_document_bytes: 1024 * 1024,
            max_nodes: 100_000,
            max_uri_bytes: 8 * 1024,
            max_selector_bytes: 4 * 1024,
            max_steps: 64,
            max_namespace_bindings: 32,
        }
    }
}
