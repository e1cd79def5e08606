//! Digest hash computations: RFC 2617 §3.2.2.1–§3.2.2.3 and RFC 7616 §3.4.1–§3.4.3
//! (`qop=auth` only; `auth-int` would need the body and no SIP client we target uses it).

use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest algorithm (RFC 7616 §3.3 `algorithm`, RFC 8760 for SIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    /// Parse the `algorithm` parameter of credentials or a challenge. Absent means MD5
    /// (RFC 2617 §3.2.1); comparison is case-insensitive because tokens are. Unknown
    /// algorithms (e.g. SHA-512-256) give None.
    pub fn from_param(param: Option<&str>) -> Option<Algorithm> {
        let Some(name) = param else {
            return Some(Algorithm::Md5);
        };
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|alg| alg.as_str().eq_ignore_ascii_case(name))
    }

    /// The token as written in challenges: `MD5`, `MD5-sess`, `SHA-256`, `SHA-256-sess`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// The `-sess` variants hash the nonce and cnonce into HA1 (RFC 7616 §3.4.2).
    pub fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// The plain algorithm whose stored HA1 this algorithm needs: `Md5` or `Sha256`.
    /// Accounts store one HA1 per plain algorithm; `-sess` derives from the same one.
    pub fn base(self) -> Algorithm {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
        }
    }

    /// Lower-case hex of the hash of `parts` joined by `:`.
    pub(crate) fn hash_hex(self, parts: &[&str]) -> String {
        match self.base() {
            Algorithm::Sha256 => hash_joined::<Sha256>(parts),
            _ => hash_joined::<Md5>(parts),
        }
    }
}

fn hash_joined<D: Digest>(parts: &[&str]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// `H(username:realm:password)` in lower-case hex: what an account stores instead of the
/// password (RFC 7616 §3.4.2). `-sess` algorithms map to their plain base, since the
/// session part is added per nonce at verification time.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.base().hash_hex(&[username, realm, password])
}

/// The Digest parameters of an Authorization / Proxy-Authorization header, already
/// unquoted. Kept independent of any SIP or HTTP parser so both can feed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DigestCredentials<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    /// The `uri` parameter (digest-uri), used as given in HA2.
    pub uri: &'a str,
    pub response: &'a str,
    pub algorithm: Option<&'a str>,
    pub cnonce: Option<&'a str>,
    pub nc: Option<&'a str>,
    pub qop: Option<&'a str>,
    pub opaque: Option<&'a str>,
}

impl<'a> DigestCredentials<'a> {
    /// The fields of a parsed `Authorization` / `Proxy-Authorization` header (SIP and HTTP
    /// share the syntax), checked against `realm`, the one this server challenged with.
    /// The digest `uri` enters the hash as sent: reverse proxies and outbound proxies may
    /// rewrite the request target, and replay is prevented by the nonce and nc checks.
    pub fn from_header(
        header: &'a sip_message::Credentials<'_>,
        realm: &'a str,
    ) -> DigestCredentials<'a> {
        DigestCredentials {
            username: header.username.as_deref().unwrap_or_default(),
            realm,
            nonce: header.nonce.as_deref().unwrap_or_default(),
            uri: header.uri.as_deref().unwrap_or_default(),
            response: header.response.as_deref().unwrap_or_default(),
            algorithm: header.algorithm,
            cnonce: header.cnonce.as_deref(),
            nc: header.nc,
            qop: header.qop,
            opaque: header.opaque.as_deref(),
        }
    }
}

/// Why a response cannot even be computed; mapped to a failure reason by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    UnsupportedAlgorithm,
    UnsupportedQop,
    MissingCnonceOrNc,
    /// RFC 2069 compatibility is only meaningful for MD5: every client that knows SHA-256
    /// knows qop too (RFC 7616 §3.4 makes qop mandatory).
    NoQopWithoutMd5,
}

impl Malformed {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Malformed::UnsupportedAlgorithm => "unsupported algorithm",
            Malformed::UnsupportedQop => "unsupported qop",
            Malformed::MissingCnonceOrNc => "qop without cnonce or nc",
            Malformed::NoQopWithoutMd5 => "missing qop",
        }
    }
}

/// The expected `response` value in lower-case hex (RFC 7616 §3.4.1; RFC 2617 §3.2.2.1 for
/// the no-qop form).
pub(crate) fn expected_response(
    method: &str,
    creds: &DigestCredentials<'_>,
    stored_ha1: &str,
) -> Result<String, Malformed> {
    let alg = Algorithm::from_param(creds.algorithm).ok_or(Malformed::UnsupportedAlgorithm)?;
    let ha1 = if alg.is_sess() {
        let cnonce = creds.cnonce.ok_or(Malformed::MissingCnonceOrNc)?;
        alg.hash_hex(&[stored_ha1, creds.nonce, cnonce])
    } else {
        stored_ha1.to_ascii_lowercase()
    };
    let ha2 = alg.hash_hex(&[method, creds.uri]);
    match creds.qop {
        Some(qop) if qop.eq_ignore_ascii_case("auth") => {
            let (Some(nc), Some(cnonce)) = (creds.nc, creds.cnonce) else {
                return Err(Malformed::MissingCnonceOrNc);
            };
            Ok(alg.hash_hex(&[&ha1, creds.nonce, nc, cnonce, "auth", &ha2]))
        }
        Some(_) => Err(Malformed::UnsupportedQop),
        None if alg == Algorithm::Md5 => Ok(alg.hash_hex(&[&ha1, creds.nonce, &ha2])),
        None => Err(Malformed::NoQopWithoutMd5),
    }
}

/// Compare a received hex response with the expected one without leaking, through timing,
/// how many leading characters matched. Hex case is not significant.
pub(crate) fn response_matches(received: &str, expected_hex: &str) -> bool {
    let (Ok(received), Ok(expected)) = (hex::decode(received), hex::decode(expected_hex)) else {
        return false;
    };
    if received.len() != expected.len() {
        return false;
    }
    received
        .iter()
        .zip(&expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_tokens_round_trip_case_insensitively() {
        assert_eq!(Algorithm::from_param(None), Some(Algorithm::Md5));
        assert_eq!(Algorithm::from_param(Some("md5")), Some(Algorithm::Md5));
        assert_eq!(
            Algorithm::from_param(Some("sha-256-SESS")),
            Some(Algorithm::Sha256Sess)
        );
        assert_eq!(Algorithm::from_param(Some("SHA-512-256")), None);
        assert_eq!(Algorithm::Sha256Sess.base(), Algorithm::Sha256);
        assert_eq!(Algorithm::Md5Sess.as_str(), "MD5-sess");
    }

    /// RFC 2617 §3.5 (note the capital O in "Circle Of Life" there).
    #[test]
    fn rfc2617_example() {
        let stored = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let creds = DigestCredentials {
            username: "Mufasa",
            realm: "testrealm@host.com",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            uri: "/dir/index.html",
            response: "6629fae49393a05397450978507c4ef1",
            algorithm: None,
            cnonce: Some("0a4f113b"),
            nc: Some("00000001"),
            qop: Some("auth"),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41"),
        };
        let expected = expected_response("GET", &creds, &stored).unwrap();
        assert_eq!(expected, "6629fae49393a05397450978507c4ef1");
        assert!(response_matches(creds.response, &expected));
    }

    fn rfc7616_creds(
        algorithm: &'static str,
        response: &'static str,
    ) -> DigestCredentials<'static> {
        DigestCredentials {
            username: "Mufasa",
            realm: "http-auth@example.org",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            uri: "/dir/index.html",
            response,
            algorithm: Some(algorithm),
            cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
            nc: Some("00000001"),
            qop: Some("auth"),
            opaque: Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"),
        }
    }

    /// RFC 7616 §3.9.1, MD5 and SHA-256 ("Circle of Life", lower-case o: erratum 4495).
    #[test]
    fn rfc7616_examples() {
        let md5 = rfc7616_creds("MD5", "8ca523f5e9506fed4657c9700eebdbec");
        let stored = ha1(
            Algorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(
            expected_response("GET", &md5, &stored).unwrap(),
            md5.response
        );

        let sha = rfc7616_creds(
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        );
        let stored = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        assert_eq!(
            expected_response("GET", &sha, &stored).unwrap(),
            sha.response
        );
    }

    #[test]
    fn sess_variant_hashes_nonce_and_cnonce_into_ha1() {
        let stored = ha1(Algorithm::Sha256, "alice", "example.com", "secret");
        let mut creds = rfc7616_creds("SHA-256-sess", "");
        let sess = expected_response("REGISTER", &creds, &stored).unwrap();
        creds.algorithm = Some("SHA-256");
        let plain = expected_response("REGISTER", &creds, &stored).unwrap();
        assert_ne!(sess, plain);
        let ha1_sess = Algorithm::Sha256.hash_hex(&[
            &stored,
            creds.nonce,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        ]);
        let ha2 = Algorithm::Sha256.hash_hex(&["REGISTER", "/dir/index.html"]);
        let by_hand = Algorithm::Sha256.hash_hex(&[
            &ha1_sess,
            creds.nonce,
            "00000001",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "auth",
            &ha2,
        ]);
        assert_eq!(sess, by_hand);
    }

    #[test]
    fn rfc2069_form_only_for_md5() {
        let stored = ha1(Algorithm::Md5, "alice", "example.com", "secret");
        let mut creds = DigestCredentials {
            username: "alice",
            realm: "example.com",
            nonce: "abc",
            uri: "sip:example.com",
            algorithm: Some("MD5"),
            ..DigestCredentials::default()
        };
        let ha2 = Algorithm::Md5.hash_hex(&["REGISTER", "sip:example.com"]);
        assert_eq!(
            expected_response("REGISTER", &creds, &stored),
            Ok(Algorithm::Md5.hash_hex(&[&stored, "abc", &ha2]))
        );
        creds.algorithm = Some("SHA-256");
        assert_eq!(
            expected_response("REGISTER", &creds, &stored),
            Err(Malformed::NoQopWithoutMd5)
        );
    }

    #[test]
    fn malformed_parameters_are_reported() {
        let stored = ha1(Algorithm::Md5, "alice", "example.com", "secret");
        let mut creds = rfc7616_creds("MD5", "");
        creds.qop = Some("auth-int");
        assert_eq!(
            expected_response("GET", &creds, &stored),
            Err(Malformed::UnsupportedQop)
        );
        creds.qop = Some("auth");
        creds.nc = None;
        assert_eq!(
            expected_response("GET", &creds, &stored),
            Err(Malformed::MissingCnonceOrNc)
        );
        creds.algorithm = Some("SHA-1");
        assert_eq!(
            expected_response("GET", &creds, &stored),
            Err(Malformed::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn response_comparison_ignores_hex_case_and_rejects_garbage() {
        assert!(response_matches("ABCDEF01", "abcdef01"));
        assert!(!response_matches("abcdef02", "abcdef01"));
        assert!(!response_matches("abcdef", "abcdef01"));
        assert!(!response_matches("zz", "abcdef01"));
    }
}
