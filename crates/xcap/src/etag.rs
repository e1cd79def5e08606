//! Entity tags and conditional requests: RFC 4825 §7.11 and §8.5 (one strong ETag per document,
//! changed by every modification) and RFC 9110 §8.8.3 (syntax, strong/weak comparison) and
//! §13.2.2 (order of precondition evaluation).
//!
//! The ETag is a hash of the document bytes, so it survives restarts and is identical on every
//! node that stores the same bytes; FNV-1a 128 is used because it is fixed by specification
//! (unlike `std`'s `DefaultHasher`) and needs no dependency.

/// Strong, quoted ETag for a document: `"` + 32 hex digits of FNV-1a-128 + `"`.
pub fn etag_for(document: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let hash = document
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME));
    format!("\"{hash:032x}\"")
}

/// The request method, as far as preconditions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

/// Result of evaluating `If-Match` / `If-None-Match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Perform the method.
    Proceed,
    /// 304 Not Modified (GET/HEAD with a matching `If-None-Match`).
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

impl Precondition {
    /// HTTP status for the non-proceed outcomes.
    pub fn status(self) -> Option<u16> {
        match self {
            Self::Proceed => None,
            Self::NotModified => Some(304),
            Self::Failed => Some(412),
        }
    }
}

/// One entity tag from a header list.
struct Tag<'a> {
    weak: bool,
    opaque: &'a str,
}

enum Condition<'a> {
    Any,
    Tags(Vec<Tag<'a>>),
}

/// Parses `*` or a comma-separated list of entity tags. Malformed members are skipped: they can
/// never match, which is the safe reading for both headers.
fn parse_condition(value: &str) -> Condition<'_> {
    if value.trim() == "*" {
        return Condition::Any;
    }
    let tags = value
        .split(',')
        .filter_map(|member| {
            let member = member.trim();
            let (weak, rest) = match member.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, member),
            };
            let opaque = rest.strip_prefix('"')?.strip_suffix('"')?;
            (!opaque.contains('"')).then_some(Tag { weak, opaque })
        })
        .collect();
    Condition::Tags(tags)
}

/// Evaluates RFC 9110 §13.2.2 steps 1 and 3 (this server has no `Last-Modified` validators).
/// `current_etag` is the stored document's ETag (as produced by [`etag_for`]), `None` when the
/// document does not exist.
pub fn check_preconditions(
    method: Method,
    if_match: Option<&str>,
    if_none_match: Option<&str>,
    current_etag: Option<&str>,
) -> Precondition {
    let current = current_etag.map(|e| match parse_condition(e) {
        Condition::Tags(mut tags) if tags.len() == 1 => tags.pop(),
        _ => None,
    });
    if let Some(value) = if_match {
        // Strong comparison: a weak tag on either side never matches.
        let ok = match (parse_condition(value), &current) {
            (_, None) => false,
            (Condition::Any, Some(_)) => true,
            (Condition::Tags(tags), Some(cur)) => cur.as_ref().is_some_and(|cur| {
                !cur.weak && tags.iter().any(|t| !t.weak && t.opaque == cur.opaque)
            }),
        };
        if !ok {
            return Precondition::Failed;
        }
    }
    if let Some(value) = if_none_match {
        // Weak comparison: W/ is ignored on both sides.
        let matched = match (parse_condition(value), &current) {
            (_, None) => false,
            (Condition::Any, Some(_)) => true,
            (Condition::Tags(tags), Some(cur)) => cur
                .as_ref()
                .is_some_and(|cur| tags.iter().any(|t| t.opaque == cur.opaque)),
        };
        if matched {
            return match method {
                Method::Get | Method::Head => Precondition::NotModified,
                Method::Put | Method::Delete => Precondition::Failed,
            };
        }
    }
    Precondition::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;
    use Method::*;
    use Precondition::*;

    #[test]
    fn etag_is_strong_quoted_stable_and_content_dependent() {
        // FNV-1a-128 of the empty input is its offset basis.
        assert_eq!(etag_for(b""), "\"6c62272e07bb014262b821756295c58d\"");
        assert_eq!(etag_for(b"a"), "\"d228cb696f1a8caf78912b704e4a8964\"");
        assert_ne!(etag_for(b"<a/>"), etag_for(b"<a />"));
        let e = etag_for(b"<x/>");
        assert!(e.len() == 34 && e.starts_with('"') && e.ends_with('"') && !e.starts_with("W/"));
    }

    #[test]
    fn if_match_matrix() {
        let cur = Some("\"abc\"");
        assert_eq!(
            check_preconditions(Put, Some("\"abc\""), None, cur),
            Proceed
        );
        assert_eq!(
            check_preconditions(Put, Some("\"x\", \"abc\""), None, cur),
            Proceed
        );
        assert_eq!(check_preconditions(Put, Some("\"x\""), None, cur), Failed);
        assert_eq!(
            check_preconditions(Put, Some("W/\"abc\""), None, cur),
            Failed,
            "strong"
        );
        assert_eq!(check_preconditions(Put, Some("*"), None, cur), Proceed);
        assert_eq!(check_preconditions(Put, Some("*"), None, None), Failed);
        assert_eq!(
            check_preconditions(Put, Some("\"abc\""), None, None),
            Failed
        );
        assert_eq!(
            check_preconditions(Delete, Some("\"x\""), None, cur),
            Failed
        );
        assert_eq!(check_preconditions(Get, Some("\"x\""), None, cur), Failed);
        assert_eq!(
            check_preconditions(Put, Some("abc"), None, cur),
            Failed,
            "unquoted"
        );
    }

    #[test]
    fn if_none_match_matrix() {
        let cur = Some("\"abc\"");
        assert_eq!(
            check_preconditions(Get, None, Some("\"abc\""), cur),
            NotModified
        );
        assert_eq!(
            check_preconditions(Head, None, Some("W/\"abc\""), cur),
            NotModified,
            "weak"
        );
        assert_eq!(
            check_preconditions(Get, None, Some("\"x\", W/\"abc\""), cur),
            NotModified
        );
        assert_eq!(check_preconditions(Get, None, Some("\"x\""), cur), Proceed);
        assert_eq!(check_preconditions(Get, None, Some("*"), cur), NotModified);
        assert_eq!(check_preconditions(Get, None, Some("*"), None), Proceed);
        assert_eq!(check_preconditions(Put, None, Some("*"), cur), Failed);
        assert_eq!(check_preconditions(Put, None, Some("*"), None), Proceed);
        assert_eq!(check_preconditions(Put, None, Some("\"abc\""), cur), Failed);
        assert_eq!(
            check_preconditions(Delete, None, Some("\"abc\""), cur),
            Failed
        );
        assert_eq!(
            check_preconditions(Delete, None, Some("\"x\""), cur),
            Proceed
        );
    }

    #[test]
    fn if_match_is_evaluated_before_if_none_match() {
        let cur = Some("\"abc\"");
        assert_eq!(
            check_preconditions(Get, Some("\"x\""), Some("\"abc\""), cur),
            Failed
        );
        assert_eq!(
            check_preconditions(Get, Some("\"abc\""), Some("\"abc\""), cur),
            NotModified
        );
        assert_eq!(
            check_preconditions(Put, Some("\"abc\""), Some("\"x\""), cur),
            Proceed
        );
        assert_eq!(check_preconditions(Get, None, None, None), Proceed);
        assert_eq!(Failed.status(), Some(412));
        assert_eq!(NotModified.status(), Some(304));
        assert_eq!(Proceed.status(), None);
    }
}
