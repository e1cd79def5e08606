//! Client side of digest authentication: choosing a challenge and computing the credentials
//! that answer it (RFC 7616 §3.4 with `qop=auth`, RFC 2617 §3.2.2 without `qop`, RFC 3261
//! §22.2–§22.3 for SIP, RFC 8760 §2.4 for the choice among several algorithms).
//!
//! The hash is computed by the same code the server side verifies with, so the two cannot
//! drift apart. The caller supplies the client nonce and the nonce count: keeping `nc` per
//! server nonce (and drawing cnonces) is state, which belongs to the user agent.

use sip_message::{quote, Challenge};

use crate::digest::{expected_response, ha1, Algorithm, DigestCredentials, Malformed};

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// The challenge names an algorithm we cannot compute (e.g. SHA-512-256).
    UnsupportedAlgorithm,
    /// The challenge offers `qop` values, none of which is `auth`.
    UnsupportedQop,
    /// No `qop` with an algorithm other than MD5: RFC 7616 makes `qop` mandatory there.
    MissingQop,
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnswerError::UnsupportedAlgorithm => "unsupported digest algorithm",
            AnswerError::UnsupportedQop => "challenge offers no qop=auth",
            AnswerError::MissingQop => "challenge without qop for an algorithm other than MD5",
        })
    }
}

impl std::error::Error for AnswerError {}

/// The request and the secret an answer is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerInput<'a> {
    /// Request method, e.g. `REGISTER` (the `A2` of RFC 7616 §3.4.3).
    pub method: &'a str,
    /// The digest-uri: the Request-URI of the request being authorized (RFC 3261 §22.4).
    pub uri: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    /// A fresh, unpredictable client nonce; only sent when the challenge has `qop`.
    pub cnonce: &'a str,
    /// How many requests (this one included) have used this server nonce; starts at 1.
    pub nonce_count: u32,
}

/// The challenge to answer among the values of one response's WWW-Authenticate or
/// Proxy-Authenticate fields: Digest challenges for `realm` (any realm when None) whose
/// algorithm we support, the strongest first (SHA-256 before MD5, RFC 8760 §2.4 leaves the
/// choice to local policy). Values that do not parse are skipped.
pub fn preferred_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
    realm: Option<&str>,
) -> Option<Challenge<'a>> {
    values
        .into_iter()
        .filter(|value| is_digest(value))
        .filter_map(|value| Challenge::parse(value).ok())
        .filter(|c| realm.is_none_or(|r| c.realm == r))
        .filter_map(|c| {
            let strong = Algorithm::from_param(c.algorithm.as_deref())?.base() == Algorithm::Sha256;
            Some((strong, c))
        })
        .enumerate()
        // The strongest, and among equally strong ones the first listed.
        .max_by_key(|(index, (strong, _))| (*strong, std::cmp::Reverse(*index)))
        .map(|(_, (_, challenge))| challenge)
}

fn is_digest(value: &str) -> bool {
    let scheme = value.trim_start().split([' ', '\t']).next().unwrap_or("");
    scheme.eq_ignore_ascii_case("Digest")
}

/// The `Authorization` / `Proxy-Authorization` value answering `challenge` for `input`:
/// `Digest username="…", realm="…", nonce="…", uri="…", response="…", algorithm=…`, plus
/// `cnonce`, `nc` and `qop=auth` when the challenge offered `auth`, and `opaque` echoed.
pub fn answer(challenge: &Challenge<'_>, input: &AnswerInput<'_>) -> Result<String, AnswerError> {
    let algorithm = Algorithm::from_param(challenge.algorithm.as_deref())
        .ok_or(AnswerError::UnsupportedAlgorithm)?;
    let offers_auth = match challenge.qop.as_deref() {
        None => false,
        Some(list) => {
            if !list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                return Err(AnswerError::UnsupportedQop);
            }
            true
        }
    };
    let nc = format!("{:08x}", input.nonce_count);
    let credentials = DigestCredentials {
        username: input.username,
        realm: &challenge.realm,
        nonce: &challenge.nonce,
        uri: input.uri,
        response: "",
        algorithm: Some(algorithm.as_str()),
        cnonce: offers_auth.then_some(input.cnonce),
        nc: offers_auth.then_some(nc.as_str()),
        qop: offers_auth.then_some("auth"),
        opaque: challenge.opaque.as_deref(),
    };
    let stored = ha1(algorithm, input.username, &challenge.realm, input.password);
    let response = expected_response(input.method, &credentials, &stored).map_err(|e| match e {
        Malformed::UnsupportedAlgorithm => AnswerError::UnsupportedAlgorithm,
        Malformed::UnsupportedQop => AnswerError::UnsupportedQop,
        // Both are filled whenever qop is, so these mean qop was absent.
        Malformed::MissingCnonceOrNc | Malformed::NoQopWithoutMd5 => AnswerError::MissingQop,
    })?;
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(input.username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(input.uri),
        algorithm.as_str(),
    );
    if offers_auth {
        out.push_str(&format!(
            ", cnonce={}, nc={nc}, qop=auth",
            quote(input.cnonce)
        ));
    }
    if let Some(opaque) = &challenge.opaque {
        out.push_str(", opaque=");
        out.push_str(&quote(opaque));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthOutcome, Nonces};

    fn input<'a>(cnonce: &'a str, nonce_count: u32) -> AnswerInput<'a> {
        AnswerInput {
            method: "REGISTER",
            uri: "sip:example.com",
            username: "alice",
            password: "secret",
            cnonce,
            nonce_count,
        }
    }

    /// The answer passes the server's own verification, for both algorithms, and a second
    /// request on the same nonce with the next nc is accepted too.
    #[test]
    fn answers_verify_against_the_server_side() {
        let nonces = Nonces::new(b"0123456789abcdef0123456789abcdef");
        for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
            let values = nonces.challenges("example.com", false, &[algorithm], 1000);
            let challenge = preferred_challenge(values.iter().map(String::as_str), None).unwrap();
            for nc in 1..=2 {
                let value = answer(&challenge, &input("c0ffee", nc)).unwrap();
                let parsed = sip_message::Credentials::parse(&value).unwrap();
                assert_eq!(parsed.nc, Some(format!("{nc:08x}").as_str()));
                let creds = DigestCredentials::from_header(&parsed, "example.com");
                let stored = ha1(algorithm, "alice", "example.com", "secret");
                assert_eq!(
                    nonces.verify("REGISTER", &creds, &stored, 1001),
                    AuthOutcome::Ok,
                    "{algorithm:?} nc={nc}"
                );
            }
        }
    }

    /// RFC 7616 §3.9.1 example values, computed from the client side.
    #[test]
    fn rfc7616_sha256_example() {
        let challenge = Challenge {
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            opaque: Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS".into()),
            algorithm: Some("SHA-256".into()),
            qop: Some("auth, auth-int".into()),
            stale: false,
        };
        let value = answer(
            &challenge,
            &AnswerInput {
                method: "GET",
                uri: "/dir/index.html",
                username: "Mufasa",
                password: "Circle of Life",
                cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                nonce_count: 1,
            },
        )
        .unwrap();
        let parsed = sip_message::Credentials::parse(&value).unwrap();
        assert_eq!(
            parsed.response.as_deref(),
            Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        );
        assert_eq!(parsed.opaque, challenge.opaque);
        assert_eq!(parsed.qop, Some("auth"));
    }

    #[test]
    fn strongest_supported_challenge_wins_and_first_among_equals() {
        let values = [
            "Digest realm=\"a\", nonce=\"1\", algorithm=MD5, qop=\"auth\"",
            "Digest realm=\"a\", nonce=\"2\", algorithm=SHA-512-256, qop=\"auth\"",
            "Basic realm=\"a\"",
            "Digest realm=\"a\", nonce=\"3\", algorithm=SHA-256, qop=\"auth\"",
            "Digest realm=\"a\", nonce=\"4\", algorithm=SHA-256, qop=\"auth\"",
            "Digest realm=\"b\", nonce=\"5\", algorithm=MD5",
        ];
        let chosen = preferred_challenge(values, None).unwrap();
        assert_eq!(chosen.nonce, "3");
        assert_eq!(preferred_challenge(values, Some("b")).unwrap().nonce, "5");
        assert!(preferred_challenge(values, Some("c")).is_none());
        assert!(preferred_challenge(["Basic realm=\"a\""], None).is_none());
    }

    #[test]
    fn without_qop_the_rfc2069_form_is_md5_only() {
        let mut challenge = Challenge {
            realm: "example.com".into(),
            nonce: "abc".into(),
            ..Challenge::default()
        };
        let value = answer(&challenge, &input("x", 1)).unwrap();
        assert!(
            !value.contains("cnonce") && !value.contains("qop"),
            "{value}"
        );
        challenge.algorithm = Some("SHA-256".into());
        assert_eq!(
            answer(&challenge, &input("x", 1)),
            Err(AnswerError::MissingQop)
        );
        challenge.algorithm = Some("SHA-1".into());
        assert_eq!(
            answer(&challenge, &input("x", 1)),
            Err(AnswerError::UnsupportedAlgorithm)
        );
        challenge.algorithm = None;
        challenge.qop = Some("auth-int".into());
        assert_eq!(
            answer(&challenge, &input("x", 1)),
            Err(AnswerError::UnsupportedQop)
        );
    }
}
