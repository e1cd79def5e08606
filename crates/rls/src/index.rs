//! The service index (RFC 4826 §4.3.1: the RLS learns its service URIs from every user's
//! rls-services document): which Request-URIs are resource lists, and whose document
//! defines them. The shell feeds it each rls-services document as stored and again whenever
//! one changes.

use std::collections::{BTreeSet, HashMap};

use crate::expand::{service_key, service_uris};

/// Service URI → owner, for every rls-services document seen.
#[derive(Debug, Clone, Default)]
pub struct ServiceIndex {
    /// By [`service_key`]: the owner and the URI as the document writes it (decoded).
    services: HashMap<String, (String, String)>,
    /// Each owner's service keys, to replace them when the document changes.
    by_owner: HashMap<String, BTreeSet<String>>,
}

impl ServiceIndex {
    pub fn new() -> ServiceIndex {
        ServiceIndex::default()
    }

    /// Installs `owner`'s rls-services document (None: removed). A service URI another owner
    /// already defines stays with that owner: XCAP keeps service URIs unique across users
    /// (RFC 4826 §4.4.7), so a clash only comes from documents written behind its back.
    /// Returns the service URIs of `owner` that were added, changed or removed, so the shell
    /// can re-expand the lists subscribed through them.
    pub fn update(&mut self, owner: &str, document: Option<&str>) -> Vec<String> {
        let previous = self.by_owner.remove(owner).unwrap_or_default();
        for key in &previous {
            self.services.remove(key);
        }
        let mut current = BTreeSet::new();
        for uri in document.map(service_uris).unwrap_or_default() {
            let key = service_key(&uri);
            if self.services.contains_key(&key) {
                continue;
            }
            self.services
                .insert(key.clone(), (owner.to_owned(), uri.clone()));
            current.insert(key);
        }
        let touched = previous.union(&current).cloned().collect();
        if !current.is_empty() {
            self.by_owner.insert(owner.to_owned(), current);
        }
        touched
    }

    /// The owner of the service `request_uri` names, and the service URI as written.
    pub fn lookup(&self, request_uri: &str) -> Option<(&str, &str)> {
        self.services
            .get(&service_key(request_uri))
            .map(|(owner, uri)| (owner.as_str(), uri.as_str()))
    }

    /// Number of services known.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}
