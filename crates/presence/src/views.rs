//! The cache of a presentity's composed document as filtered for `allow` watchers whose rules
//! carry `provide-*` transformations (RFC 5025 §3.3): one rendering per distinct permission
//! set, shared by every watcher with that set, like the composed document itself.

use presence_auth::Transformations;
use sip_subscription::Body;

/// Most permission sets cached per presentity. Watchers matching the same rules share a set,
/// so real rule documents stay far below it; past it views are rendered without caching.
const MAX_VIEWS: usize = 16;

/// Filtered renderings of one composed document.
#[derive(Debug, Default)]
pub(crate) struct FilteredViews {
    /// The composed document the views were made from; a different one empties the cache.
    source: Option<Body>,
    views: Vec<(Transformations, Body)>,
}

impl FilteredViews {
    /// The view of `document` for `permissions`, if it was rendered since `document` was.
    pub(crate) fn get(&self, document: &Body, permissions: &Transformations) -> Option<Body> {
        if !self.source.as_ref().is_some_and(|s| same(s, document)) {
            return None;
        }
        self.views
            .iter()
            .find(|(p, _)| p == permissions)
            .map(|(_, body)| body.clone())
    }

    /// Remembers `view`, the rendering of `document` for `permissions`.
    pub(crate) fn insert(&mut self, document: Body, permissions: &Transformations, view: Body) {
        if !self.source.as_ref().is_some_and(|s| same(s, &document)) {
            self.views.clear();
            self.source = Some(document);
        }
        if self.views.len() < MAX_VIEWS {
            self.views.push((permissions.clone(), view));
        }
    }
}

/// Whether two bodies hold the same document: the cached composed body is shared, so the
/// pointer test settles almost every call before the bytes are compared.
fn same(a: &Body, b: &Body) -> bool {
    (a.data.as_ptr() == b.data.as_ptr() && a.data.len() == b.data.len()) || a.data == b.data
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_payloads::common_policy::UnknownAttribute;

    fn body(text: &str) -> Body {
        Body::new("application/pidf+xml", text.to_owned())
    }

    #[test]
    fn views_follow_their_source_document() {
        let none = Transformations::default();
        let notes = Transformations {
            all_attributes: true,
            ..Transformations::default()
        };
        let first = body("<a/>");
        let mut views = FilteredViews::default();
        assert_eq!(views.get(&first, &none), None);
        views.insert(first.clone(), &none, body("none"));
        views.insert(first.clone(), &notes, body("notes"));
        assert_eq!(views.get(&first, &none), Some(body("none")));
        assert_eq!(views.get(&body("<a/>"), &notes), Some(body("notes")));

        let second = body("<b/>");
        assert_eq!(views.get(&second, &none), None, "stale after a change");
        views.insert(second.clone(), &notes, body("notes 2"));
        assert_eq!(views.get(&second, &notes), Some(body("notes 2")));
        assert_eq!(views.get(&second, &none), None, "old views are gone");
        assert_eq!(views.get(&first, &notes), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let document = body("<a/>");
        let mut views = FilteredViews::default();
        for n in 0..MAX_VIEWS + 4 {
            let permissions = Transformations {
                unknown_attributes: vec![UnknownAttribute {
                    namespace: "urn:x".into(),
                    name: n.to_string(),
                    provide: true,
                }],
                ..Transformations::default()
            };
            views.insert(document.clone(), &permissions, body(&n.to_string()));
        }
        assert_eq!(views.views.len(), MAX_VIEWS);
    }
}
