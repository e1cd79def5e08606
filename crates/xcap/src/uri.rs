//! XCAP request URIs (RFC 4825 §6): document selector (§6.2), node selector separator and node
//! selector (§6.3), and the query's namespace bindings (§6.4, XPointer `xmlns()` scheme).
//!
//! The path is split at the `~~` separator *before* percent-decoding, so an encoded `%7E%7E` in a
//! document name or attribute value never acts as a separator. Document selector segments are
//! decoded one by one (an XUI may be written literally, `sip:alice@example.com`, or encoded,
//! `sip%3Aalice%40example.com`); the node selector is decoded as a whole.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::error::UriError;
use crate::selector::NodeSelector;
use crate::Limits;

/// Characters escaped when rebuilding a path: everything that is not a `pchar` (RFC 3986).
const PATH_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A segment escape set that also escapes `/`, for XUIs and document names.
const SEGMENT_ESCAPE: &AsciiSet = &PATH_ESCAPE.add(b'/');

/// The tree a document lives in (§6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tree {
    /// `global`: documents shared by all users.
    Global,
    /// `users/<XUI>`: a user's home directory; the XUI percent-decoded.
    Users(String),
}

/// A parsed XCAP URI, relative to the XCAP root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XcapUri {
    /// Application unique ID, e.g. `resource-lists`.
    pub auid: String,
    /// Global or per-user tree.
    pub tree: Tree,
    /// Document path below the tree, decoded segments joined by `/` (`index`,
    /// `oma_status-icon/index`).
    pub document: String,
    /// Node selector, if the URI has a `~~` part.
    pub node: Option<NodeSelector>,
    /// Namespace bindings from the query, in order.
    pub namespaces: Vec<(String, String)>,
}

fn decode(s: &str) -> Result<Cow<'_, str>, UriError> {
    percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| UriError::NotUtf8)
}

impl XcapUri {
    /// Parses the request path below the XCAP root (a leading `/` is optional) and the query.
    pub fn parse(path: &str, query: Option<&str>, limits: &Limits) -> Result<XcapUri, UriError> {
        if path.len() > limits.max_uri_bytes
            || query.is_some_and(|q| q.len() > limits.max_uri_bytes)
        {
            return Err(UriError::TooLong);
        }
        let path = path.strip_prefix('/').unwrap_or(path);
        let (doc_part, node_part) = match split_separator(path) {
            Some((d, n)) => (d, Some(n)),
            None => (path, None),
        };
        let mut segments = Vec::new();
        for raw in doc_part.split('/') {
            let seg = decode(raw)?;
            if seg.is_empty() || seg == "." || seg == ".." || seg.contains(['/', '\0']) {
                return Err(UriError::BadPath("empty, dot or slash-bearing segment"));
            }
            segments.push(seg.into_owned());
        }
        let mut segments = segments.into_iter();
        let auid = segments.next().ok_or(UriError::BadPath("missing AUID"))?;
        let tree = match segments.next().as_deref() {
            Some("global") => Tree::Global,
            Some("users") => Tree::Users(segments.next().ok_or(UriError::BadPath("missing XUI"))?),
            _ => return Err(UriError::BadPath("tree must be global or users")),
        };
        let document = segments.collect::<Vec<_>>().join("/");
        if document.is_empty() {
            return Err(UriError::BadPath("missing document name"));
        }
        let namespaces = match query {
            Some(q) if !q.is_empty() => parse_xmlns_query(&decode(q)?, limits)?,
            _ => Vec::new(),
        };
        let node = node_part
            .map(|n| NodeSelector::parse(&decode(n)?, &namespaces, limits))
            .transpose()?;
        Ok(XcapUri {
            auid,
            tree,
            document,
            node,
            namespaces,
        })
    }

    /// The document URI relative to the XCAP root, percent-encoded, without node selector
    /// (e.g. `resource-lists/users/sip:alice@example.com/index`).
    pub fn document_path(&self) -> String {
        let mut out = utf8_percent_encode(&self.auid, SEGMENT_ESCAPE).to_string();
        match &self.tree {
            Tree::Global => out.push_str("/global"),
            Tree::Users(xui) => {
                out.push_str("/users/");
                out.extend(utf8_percent_encode(xui, SEGMENT_ESCAPE));
            }
        }
        for seg in self.document.split('/') {
            out.push('/');
            out.extend(utf8_percent_encode(seg, SEGMENT_ESCAPE));
        }
        out
    }

    /// URI (relative to the XCAP root) of the element selected by the first `steps` steps of
    /// the node selector, with the query's bindings so prefixes stay resolvable; the document
    /// URI itself for zero steps.
    pub(crate) fn ancestor_path(&self, steps: usize) -> String {
        let mut out = self.document_path();
        if let (Some(node), true) = (&self.node, steps > 0) {
            out.push_str("/~~");
            out.extend(utf8_percent_encode(&node.prefix_text(steps), PATH_ESCAPE));
            if !self.namespaces.is_empty() {
                out.push('?');
            }
            for (prefix, ns) in &self.namespaces {
                let escaped = ns.replace('^', "^^").replace('(', "^(").replace(')', "^)");
                let part = format!("xmlns({prefix}={escaped})");
                out.extend(utf8_percent_encode(&part, PATH_ESCAPE));
            }
        }
        out
    }
}

/// Splits at the first `~~` that is a whole path segment: `doc/~~/node` or a trailing `doc/~~`.
fn split_separator(path: &str) -> Option<(&str, &str)> {
    path.match_indices("/~~")
        .map(|(i, _)| i)
        .find(|&i| matches!(path.as_bytes().get(i + 3), None | Some(b'/')))
        .map(|i| (&path[..i], &path[i + 3..]))
}

/// Parses `xmlns(p=uri)xmlns(q=uri)…` (XPointer framework escaping: `^(`, `^)`, `^^`).
fn parse_xmlns_query(q: &str, limits: &Limits) -> Result<Vec<(String, String)>, UriError> {
    let mut out = Vec::new();
    let mut rest = q.trim();
    while !rest.is_empty() {
        let body = rest
            .strip_prefix("xmlns(")
            .ok_or(UriError::BadQuery("expected xmlns("))?;
        let mut value = String::new();
        let mut depth = 0usize;
        let mut end = None;
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '^' => match chars.next() {
                    Some((_, e @ ('(' | ')' | '^'))) => value.push(e),
                    _ => return Err(UriError::BadQuery("bad ^ escape")),
                },
                '(' => {
                    depth += 1;
                    value.push(c);
                }
                ')' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                ')' => {
                    depth -= 1;
                    value.push(c);
                }
                _ => value.push(c),
            }
        }
        let end = end.ok_or(UriError::BadQuery("unterminated xmlns("))?;
        let (prefix, uri) = value
            .split_once('=')
            .ok_or(UriError::BadQuery("expected prefix=uri"))?;
        let (prefix, uri) = (prefix.trim(), uri.trim());
        let valid_prefix = prefix.chars().enumerate().all(|(i, c)| {
            c.is_alphabetic()
                || c == '_'
                || (i > 0 && (c.is_alphanumeric() || matches!(c, '-' | '.')))
        });
        if prefix.is_empty() || !valid_prefix || uri.is_empty() {
            return Err(UriError::BadQuery("invalid xmlns() binding"));
        }
        if out.len() >= limits.max_namespace_bindings {
            return Err(UriError::TooLong);
        }
        out.push((prefix.to_owned(), uri.to_owned()));
        rest = body[end + 1..].trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::{NameTest, Predicate, Terminal};

    fn parse(path: &str, query: Option<&str>) -> Result<XcapUri, UriError> {
        XcapUri::parse(path, query, &Limits::default())
    }

    #[test]
    fn literal_and_encoded_xui() {
        for path in [
            "/resource-lists/users/sip:alice@example.com/index",
            "resource-lists/users/sip%3Aalice%40example.com/index",
        ] {
            let uri = parse(path, None).unwrap();
            assert_eq!(uri.auid, "resource-lists");
            assert_eq!(uri.tree, Tree::Users("sip:alice@example.com".into()));
            assert_eq!(uri.document, "index");
            assert_eq!(uri.node, None);
            assert_eq!(
                uri.document_path(),
                "resource-lists/users/sip:alice@example.com/index"
            );
        }
    }

    #[test]
    fn global_tree_and_sub_folders() {
        let uri = parse("xcap-caps/global/index", None).unwrap();
        assert_eq!(uri.tree, Tree::Global);
        let uri = parse(
            "org.openmobilealliance.pres-content/users/sip:a@b.c/oma_status-icon/index",
            None,
        )
        .unwrap();
        assert_eq!(uri.document, "oma_status-icon/index");
        assert_eq!(
            uri.document_path(),
            "org.openmobilealliance.pres-content/users/sip:a@b.c/oma_status-icon/index"
        );
    }

    #[test]
    fn bad_paths() {
        for path in [
            "",
            "resource-lists",
            "resource-lists/global",
            "resource-lists/users/sip:a@b",
            "resource-lists/other/x/index",
            "resource-lists/users//index",
            "resource-lists/users/sip:a@b/../index",
            "resource-lists/users/sip:a@b/a%2Fb",
            "resource-lists/users/sip:a@b/%FF",
        ] {
            let err = parse(path, None).unwrap_err();
            assert!(
                matches!(err, UriError::BadPath(_) | UriError::NotUtf8),
                "{path}: {err:?}"
            );
        }
    }

    #[test]
    fn node_selector_is_decoded_after_splitting() {
        let uri = parse(
            "resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B%40name%3D%22a%7E%7E%2Fb%22%5D",
            None,
        )
        .unwrap();
        let node = uri.node.unwrap();
        assert_eq!(node.steps.len(), 2);
        assert!(
            matches!(&node.steps[1].predicates[0], Predicate::Attr(a, v) if a.local == "name" && v == "a~~/b")
        );
        // An encoded separator in the document name is not a separator.
        let uri = parse("resource-lists/global/a%7E%7E", None).unwrap();
        assert_eq!(uri.document, "a~~");
        assert!(uri.node.is_none());
    }

    #[test]
    fn blink_style_selector_round_trips_to_ancestor_path() {
        let uri = parse(
            r#"resource-lists/users/sip:a@b/index/~~/resource-lists/list[@name="x"]/entry"#,
            None,
        )
        .unwrap();
        assert_eq!(
            uri.ancestor_path(2),
            "resource-lists/users/sip:a@b/index/~~/resource-lists/list%5B@name=%22x%22%5D"
        );
        assert_eq!(uri.ancestor_path(0), "resource-lists/users/sip:a@b/index");
    }

    #[test]
    fn ancestor_path_keeps_namespace_bindings() {
        let uri = parse(
            "a/global/d/~~/p:r/p:s/p:t",
            Some("xmlns(p=urn:x(1))xmlns(q=urn:q)"),
        )
        .unwrap();
        let path = uri.ancestor_path(2);
        assert_eq!(
            path,
            "a/global/d/~~/p:r/p:s?xmlns(p=urn:x%5E(1%5E))xmlns(q=urn:q)"
        );
        let (p, q) = path.split_once('?').unwrap();
        let again = XcapUri::parse(p, Some(q), &Limits::default()).unwrap();
        assert_eq!(again.namespaces, uri.namespaces);
        assert_eq!(again.node.unwrap().steps, uri.node.unwrap().steps[..2]);
    }

    #[test]
    fn xmlns_query_bindings() {
        let uri = parse(
            "pidf-manipulation/users/sip:a@b/index/~~/p:presence/dm:person/namespace::*",
            Some("xmlns(p=urn:ietf:params:xml:ns:pidf)%20xmlns(dm=urn:ietf:params:xml:ns:pidf:data-model)"),
        )
        .unwrap();
        assert_eq!(uri.namespaces.len(), 2);
        let node = uri.node.unwrap();
        assert_eq!(
            node.steps[1].name,
            NameTest::Name {
                ns: Some("urn:ietf:params:xml:ns:pidf:data-model".into()),
                local: "person".into()
            }
        );
        assert_eq!(node.terminal, Some(Terminal::Namespaces));
        let uri = parse("a/global/d", Some("xmlns(x=urn:a^(b^)^^)")).unwrap();
        assert_eq!(uri.namespaces, [("x".to_owned(), "urn:a(b)^".to_owned())]);
    }

    #[test]
    fn bad_queries_and_unbound_prefixes() {
        for q in [
            "foo",
            "xmlns(p)",
            "xmlns(=urn:a)",
            "xmlns(p=urn:a",
            "xmlns(1=urn:a)",
            "xmlns(p=)",
        ] {
            assert!(
                matches!(parse("a/global/d", Some(q)), Err(UriError::BadQuery(_))),
                "{q}"
            );
        }
        assert_eq!(
            parse("a/global/d/~~/x:r", Some("xmlns(p=urn:p)")),
            Err(UriError::UnboundPrefix("x".into()))
        );
        assert_eq!(UriError::UnboundPrefix("x".into()).status(), 400);
    }

    #[test]
    fn uri_limits() {
        let limits = Limits {
            max_uri_bytes: 30,
            max_namespace_bindings: 1,
            ..Limits::default()
        };
        assert_eq!(
            XcapUri::parse(
                "resource-lists/users/sip:alice@example.com/index",
                None,
                &limits
            ),
            Err(UriError::TooLong)
        );
        assert_eq!(
            XcapUri::parse("a/global/d", Some("xmlns(a=b)xmlns(c=d)"), &limits),
            Err(UriError::TooLong)
        );
        assert_eq!(UriError::TooLong.status(), 414);
    }
}
