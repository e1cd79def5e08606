//! Contacts' icons (blink-compat §5.3): a published icon URL `…#blink-icon<token>` is fetched
//! with an unauthenticated GET of the URL without its fragment, the answer must be a
//! pres-content document, and the result is cached by URL and token so an unchanged token is
//! never fetched again. URLs without a token are revalidated with `If-None-Match`.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::Method;

use crate::content::Icon;
use crate::http::{HttpClient, HttpError, TlsMode};

/// Icons kept in memory; the oldest entry goes first beyond this.
pub const MAX_CACHED: usize = 500;
const TIMEOUT: Duration = Duration::from_secs(15);
const TOKEN_MARK: &str = "#blink-icon";

#[derive(Debug, thiserror::Error)]
pub enum IconError {
    #[error("icon URL {0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("icon server answered HTTP {0}")]
    Status(u16),
    #[error("the icon is not a usable pres-content document")]
    Invalid,
}

/// An icon URL taken apart: the root (`scheme://authority`), the path to GET and the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IconUrl {
    pub root: String,
    pub path: String,
    pub token: Option<String>,
}

impl IconUrl {
    pub fn parse(url: &str) -> Result<IconUrl, IconError> {
        let bad = || IconError::BadUrl(url.to_owned());
        let (resource, fragment) = match url.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (url, None),
        };
        let rest = resource
            .strip_prefix("http://")
            .or_else(|| resource.strip_prefix("https://"))
            .ok_or_else(bad)?;
        let scheme_len = resource.len() - rest.len();
        let authority_len = rest.find('/').ok_or_else(bad)?;
        if authority_len == 0 {
            return Err(bad());
        }
        let token = fragment
            .and_then(|f| f.strip_prefix(&TOKEN_MARK[1..]))
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok(IconUrl {
            root: resource[..scheme_len + authority_len].to_owned(),
            path: rest[authority_len..].to_owned(),
            token,
        })
    }
}

#[derive(Debug, Clone)]
struct Entry {
    token: Option<String>,
    etag: Option<String>,
    icon: Icon,
    used: u64,
}

/// Icons fetched so far.
#[derive(Debug, Default)]
pub struct IconCache {
    entries: BTreeMap<String, Entry>,
    clock: u64,
}

impl IconCache {
    /// The icon at `url`, from the cache when its token is unchanged, else fetched.
    pub async fn get(&mut self, url: &str, tls: &TlsMode) -> Result<Icon, IconError> {
        let parsed = IconUrl::parse(url)?;
        let key = format!("{}{}", parsed.root, parsed.path);
        self.clock += 1;
        if let Some(entry) = self.entries.get_mut(&key) {
            if parsed.token.is_some() && entry.token == parsed.token {
                entry.used = self.clock;
                return Ok(entry.icon.clone());
            }
        }
        let client = HttpClient::new(&parsed.root, None, tls, TIMEOUT)?;
        let mut headers = vec![("accept", "application/vnd.oma.pres-content+xml".to_owned())];
        let cached_etag = self
            .entries
            .get(&key)
            .filter(|_| parsed.token.is_none())
            .and_then(|e| e.etag.clone());
        if let Some(etag) = &cached_etag {
            headers.push(("if-none-match", etag.clone()));
        }
        let response = client
            .request(Method::GET, &parsed.path, &headers, None)
            .await?;
        let icon = match response.status {
            304 => match self.entries.get(&key) {
                Some(entry) => entry.icon.clone(),
                None => return Err(IconError::Status(304)),
            },
            200 => std::str::from_utf8(&response.body)
                .ok()
                .and_then(Icon::parse)
                .ok_or(IconError::Invalid)?,
            status => return Err(IconError::Status(status)),
        };
        if self.entries.len() >= MAX_CACHED && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(
            key,
            Entry {
                token: parsed.token,
                etag: response.etag.or(cached_etag),
                icon: icon.clone(),
                used: self.clock,
            },
        );
        Ok(icon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_root_path_and_token() {
        let url = IconUrl::parse(
            "https://xcap.example.com:8443/xcap-root/org.openmobilealliance.pres-content/users/\
             sip:alice@example.com/oma_status-icon/index#blink-icon3f78",
        )
        .unwrap();
        assert_eq!(url.root, "https://xcap.example.com:8443");
        assert_eq!(
            url.path,
            "/xcap-root/org.openmobilealliance.pres-content/users/sip:alice@example.com/oma_status-icon/index"
        );
        assert_eq!(url.token.as_deref(), Some("3f78"));
        let plain = IconUrl::parse("http://h/icon#other").unwrap();
        assert_eq!(plain.token, None);
        for bad in ["ftp://h/x", "http://", "http:///x", "https://host-only"] {
            assert!(IconUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
