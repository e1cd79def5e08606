//! HTTP authentication for XCAP (RFC 4825 §5.7, blink-compat §2.1): Digest (RFC 7616 with
//! `qop=auth`, MD5 and SHA-256, one challenge per configured algorithm in the configured
//! order, RFC 7616 §3.7) against the SIP accounts, and Basic (RFC 7617) only over TLS.
//!
//! The realm is the SIP domain of the XUI and the username is the user part of the account,
//! because Blink sends credentials only when the realm equals its SIP domain exactly and
//! uses the account's user part as the username.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use base64::Engine as _;
use sip_auth::{Algorithm, AuthOutcome, DigestCredentials, Nonces};
use sip_message::Credentials;
use tracing::info;

use crate::AccountSource;

/// Outcome of checking a request's `Authorization` header for one realm.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Authenticated as this user part of the realm's domain.
    User(String),
    /// No usable credentials: answer 401 with fresh challenges (`stale` set when the
    /// password was right but the nonce expired).
    Challenge { stale: bool },
}

/// Checks the `Authorization` header of a request for `realm`.
pub(crate) async fn authenticate(
    headers: &HeaderMap,
    method: &str,
    realm: &str,
    secure: bool,
    nonces: &Nonces,
    accounts: &dyn AccountSource,
) -> Verdict {
    let fail = Verdict::Challenge { stale: false };
    let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return fail;
    };
    let value = value.trim();
    if let Some((scheme, token)) = value.split_once(' ') {
        if scheme.eq_ignore_ascii_case("Basic") {
            // Basic sends the password itself: never accept it in clear text.
            if !secure {
                return fail;
            }
            return basic(token.trim(), realm, accounts).await.unwrap_or(fail);
        }
    }
    let Ok(credentials) = Credentials::parse(value) else {
        return fail;
    };
    if !credentials.scheme.eq_ignore_ascii_case("Digest")
        || !credentials
            .realm
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(realm))
    {
        return fail;
    }
    let Some(username) = credentials.username.as_deref() else {
        return fail;
    };
    let Some(algorithm) = Algorithm::from_param(credentials.algorithm) else {
        return fail;
    };
    let Some(ha1) = accounts.digest_ha1(username, realm, algorithm.base()).await else {
        info!(%username, %realm, "XCAP request for an unknown account");
        return fail;
    };
    let digest = DigestCredentials::from_header(&credentials, realm);
    match nonces.verify(method, &digest, &ha1, unix_now()) {
        AuthOutcome::Ok => Verdict::User(username.to_owned()),
        AuthOutcome::Stale => Verdict::Challenge { stale: true },
        AuthOutcome::Failed(reason) => {
            info!(%username, %realm, reason, "XCAP digest authentication failed");
            fail
        }
        AuthOutcome::Replay => {
            info!(%username, %realm, "replayed XCAP digest credentials");
            fail
        }
    }
}

async fn basic(token: &str, realm: &str, accounts: &dyn AccountSource) -> Option<Verdict> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    let stored = accounts.digest_ha1(user, realm, Algorithm::Md5).await?;
    let given = sip_auth::ha1(Algorithm::Md5, user, realm, password);
    // Constant-time comparison: the HA1 is a password equivalent.
    let same = stored.len() == given.len()
        && stored
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    same.then(|| Verdict::User(user.to_owned()))
}

/// `WWW-Authenticate` values for a 401: one Digest challenge per algorithm, then Basic when
/// the connection is encrypted.
pub(crate) fn challenges(
    realm: &str,
    stale: bool,
    secure: bool,
    algorithms: &[Algorithm],
    nonces: &Nonces,
) -> Vec<String> {
    let mut out = nonces.challenges(realm, stale, algorithms, unix_now());
    if secure {
        out.push(format!("Basic realm=\"{realm}\", charset=\"UTF-8\""));
    }
    out
}

/// Wall-clock seconds: nonces carry their issue time and must survive restarts.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Accounts;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn basic_only_over_tls() {
        let nonces = Nonces::with_random_secret();
        let accounts = Accounts::with("alice", "example.com", "pw");
        let token = base64::engine::general_purpose::STANDARD.encode("alice:pw");
        let h = headers(&format!("Basic {token}"));
        let verdict = authenticate(&h, "GET", "example.com", true, &nonces, &accounts).await;
        assert_eq!(verdict, Verdict::User("alice".into()));
        let verdict = authenticate(&h, "GET", "example.com", false, &nonces, &accounts).await;
        assert_eq!(verdict, Verdict::Challenge { stale: false });
        let wrong = base64::engine::general_purpose::STANDARD.encode("alice:nope");
        let h = headers(&format!("Basic {wrong}"));
        let verdict = authenticate(&h, "GET", "example.com", true, &nonces, &accounts).await;
        assert_eq!(verdict, Verdict::Challenge { stale: false });
    }

    #[test]
    fn challenges_follow_the_configured_order_and_add_basic_over_tls() {
        let nonces = Nonces::with_random_secret();
        let algs = [Algorithm::Md5, Algorithm::Sha256];
        let plain = challenges("example.com", false, false, &algs, &nonces);
        assert_eq!(plain.len(), 2);
        assert!(plain[0].contains("algorithm=MD5") && plain[0].contains("qop=\"auth\""));
        assert!(plain[1].contains("algorithm=SHA-256"));
        let tls = challenges("example.com", true, true, &algs, &nonces);
        assert!(tls[0].contains("stale=true"));
        assert!(tls[2].starts_with("Basic realm=\"example.com\""));
    }
}
