//! Client side of HTTP Digest (RFC 7616, `qop=auth`): answer the first challenge the
//! server offers that we can compute, then keep its nonce and count `nc` up, as a real
//! client does, so that only the first request of a client (and a stale nonce) costs a
//! 401 round trip.

use hyper::header::WWW_AUTHENTICATE;
use hyper::HeaderMap;
use md5::Md5;
use sha2::{Digest as _, Sha256};
use sip_message::Challenge;

use crate::cli::Account;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn parse(name: Option<&str>) -> Option<Algorithm> {
        match name {
            None => Some(Algorithm::Md5),
            Some(n) if n.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(n) if n.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hex(self, parts: &[&str]) -> String {
        let text = parts.join(":");
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(text.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(text.as_bytes())),
        }
    }
}

/// The state of one client's digest session: the nonce in use and its request counter.
#[derive(Debug)]
pub struct Session {
    username: String,
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    ha1: String,
    cnonce: String,
    nc: u32,
}

impl Session {
    /// A session from the `WWW-Authenticate` headers of a 401, using the first Digest
    /// challenge in the server's order that offers `qop=auth` with an algorithm we know.
    pub fn from_challenges(
        headers: &HeaderMap,
        account: &Account,
        cnonce: String,
    ) -> Result<Session, String> {
        let challenge = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter(|value| {
                value
                    .get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("Digest "))
            })
            .filter_map(|value| Challenge::parse(value).ok())
            .filter(|c| {
                c.qop
                    .as_deref()
                    .is_some_and(|q| q.split(',').any(|q| q.trim() == "auth"))
            })
            .find_map(|c| Algorithm::parse(c.algorithm.as_deref()).map(|alg| (c, alg)));
        let Some((challenge, algorithm)) = challenge else {
            return Err("401 without a usable Digest qop=auth challenge".into());
        };
        if !challenge.realm.eq_ignore_ascii_case(&account.domain) {
            return Err(format!(
                "realm `{}` is not the account's domain `{}`",
                challenge.realm, account.domain
            ));
        }
        Ok(Session {
            ha1: algorithm.hex(&[&account.user, &challenge.realm, &account.password]),
            username: account.user.clone(),
            realm: challenge.realm.into_owned(),
            nonce: challenge.nonce.into_owned(),
            opaque: challenge.opaque.map(|o| o.into_owned()),
            algorithm,
            cnonce,
            nc: 0,
        })
    }

    /// The `Authorization` value for the next request (each call uses the next `nc`).
    pub fn authorization(&mut self, method: &str, uri: &str) -> String {
        self.nc = self.nc.wrapping_add(1).max(1);
        let nc = format!("{:08x}", self.nc);
        let ha2 = self.algorithm.hex(&[method, uri]);
        let response =
            self.algorithm
                .hex(&[&self.ha1, &self.nonce, &nc, &self.cnonce, "auth", &ha2]);
        let opaque = self
            .opaque
            .as_deref()
            .map(|o| format!(", opaque=\"{o}\""))
            .unwrap_or_default();
        format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
             algorithm={}, qop=auth, nc={nc}, cnonce=\"{}\", response=\"{response}\"{opaque}",
            self.username,
            self.realm,
            self.nonce,
            self.algorithm.name(),
            self.cnonce
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge_headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(WWW_AUTHENTICATE, v.parse().unwrap());
        }
        headers
    }

    fn alice() -> Account {
        Account {
            user: "Mufasa".into(),
            domain: "http-auth@example.org".into(),
            password: "Circle of Life".into(),
        }
    }

    /// RFC 7616 §3.9.1, MD5 variant: the published response value.
    #[test]
    fn rfc7616_md5_example_and_counting_nc() {
        let headers = challenge_headers(&[
            "Basic realm=\"http-auth@example.org\"",
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
            "Digest realm=\"http-auth@example.org\", qop=\"auth\", algorithm=SHA-256, nonce=\"n\"",
        ]);
        let mut session = Session::from_challenges(
            &headers,
            &alice(),
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into(),
        )
        .unwrap();
        let first = session.authorization("GET", "/dir/index.html");
        assert!(
            first.contains("response=\"8ca523f5e9506fed4657c9700eebdbec\""),
            "{first}"
        );
        assert!(first.contains("nc=00000001") && first.contains("algorithm=MD5"));
        assert!(first.ends_with("opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""));
        let second = session.authorization("GET", "/dir/index.html");
        assert!(second.contains("nc=00000002"), "{second}");
    }

    #[test]
    fn unusable_challenges_are_errors() {
        let account = alice();
        let none = Session::from_challenges(&HeaderMap::new(), &account, "c".into());
        assert!(none.is_err());
        let no_qop = challenge_headers(&["Digest realm=\"http-auth@example.org\", nonce=\"n\""]);
        assert!(Session::from_challenges(&no_qop, &account, "c".into()).is_err());
        let other_realm =
            challenge_headers(&["Digest realm=\"elsewhere\", nonce=\"n\", qop=\"auth\""]);
        assert!(Session::from_challenges(&other_realm, &account, "c".into())
            .unwrap_err()
            .contains("realm"));
    }
}
