//! SIP SIMPLE and XCAP XML payloads, independent of SIP and HTTP.
//!
//! - [`validate`]: schema validation of every XCAP application usage document (RFC 4825 §8.2.1),
//!   hand-written over roxmltree and kept as strict as the XSDs, with libxml2 as the test oracle.
//! - [`uri`]: the percent-encoding Blink applies to every xs:anyURI value (blink-compat §0.1).
//! - [`xcap_error`]: `application/xcap-error+xml` bodies (RFC 4825 §11).
//! - [`pidf`]: PIDF publications (RFC 3863, RFC 4479) read and composed into one document.
//! - [`watcherinfo`]: `application/watcherinfo+xml` documents (RFC 3858).
//! - [`common_policy`]: pres-rules documents (RFC 4745, RFC 5025, OMA common-policy).
//! - [`xcap_diff`]: `application/xcap-diff+xml` documents (RFC 5874).
//! - [`rlmi`]: resource list meta-information, `application/rlmi+xml` (RFC 4662 §5).
//! - [`multipart`]: `multipart/related` bodies of resource list NOTIFYs (RFC 2387, RFC 4662 §5).

pub mod common_policy;
pub mod multipart;
pub mod pidf;
pub mod rlmi;
pub mod uri;
pub mod validate;
pub mod watcherinfo;
pub mod xcap_diff;
pub mod xcap_error;

pub use uri::{decode_any_uri, encode_any_uri};
pub use validate::{
    validate, validate_bytes, validate_schema, validate_with, Constraints, Usage, ValidationError,
};
pub use xcap_error::{XcapError, XcapErrorKind};
