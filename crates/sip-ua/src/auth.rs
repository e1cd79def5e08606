//! Answering digest challenges as a UAC (RFC 3261 §22.2 for 401, §22.3 for 407; RFC 7616
//! §3.4 nonce counting and `stale`; RFC 8760 for SHA-256).
//!
//! Answers are kept after use and sent with every later request of the same role, each time
//! with the next nonce count and a fresh cnonce, so refreshes do not pay a challenge round
//! trip until the server's nonce expires (it then says `stale=true`, which is not a failure).

use std::borrow::Cow;

use rand::rngs::StdRng;
use sip_message::{Challenge, HeaderName, Message, MessageWriter};

use crate::request::token;
use crate::Credentials;

/// Realms one role answers at once (a registrar plus a few proxies on the way).
const MAX_REALMS: usize = 4;
/// Challenges answered in a row without another final response: enough for a 401 then a
/// 407 then a stale nonce; more means the server keeps refusing what we send.
const MAX_ROUNDS: u32 = 3;

#[derive(Debug)]
struct Answer {
    /// Proxy-Authorization (a 407) rather than Authorization (a 401).
    proxy: bool,
    challenge: Challenge<'static>,
    /// Requests sent so far with this nonce.
    nonce_count: u32,
}

/// Why a challenge ends the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No credentials were configured for this role.
    NoCredentials,
    /// The server challenged again a nonce we answered, without `stale`: wrong username or
    /// password (or no account).
    Rejected,
    /// No challenge in the response we can answer (unknown scheme, algorithm or qop).
    Unsupported,
    /// [`MAX_ROUNDS`] challenges in a row.
    TooManyRounds,
}

/// The digest state of one role (a registration, publication or subscription).
#[derive(Debug, Default)]
pub(crate) struct Auth {
    answers: Vec<Answer>,
    rounds: u32,
}

impl Auth {
    /// A 401 or 407 arrived for a request that carried [`Self::write`]'s headers. Ok: send
    /// the request again. On failure the stored answers are dropped, so the next attempt
    /// starts from a fresh challenge rather than repeating a refused answer.
    pub(crate) fn on_challenge(
        &mut self,
        response: &Message,
        credentials: Option<&Credentials>,
    ) -> Result<(), AuthFailure> {
        let result = self.take_challenge(response, credentials);
        if result.is_err() {
            self.answers.clear();
            self.rounds = 0;
        }
        result
    }

    fn take_challenge(
        &mut self,
        response: &Message,
        credentials: Option<&Credentials>,
    ) -> Result<(), AuthFailure> {
        let credentials = credentials.ok_or(AuthFailure::NoCredentials)?;
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            return Err(AuthFailure::TooManyRounds);
        }
        let proxy = response.status() == Some(407);
        let name = if proxy {
            HeaderName::ProxyAuthenticate
        } else {
            HeaderName::WwwAuthenticate
        };
        let mut realms: Vec<String> = Vec::new();
        for value in response.header_values(&name) {
            if let Ok(challenge) = Challenge::parse(value) {
                if !realms.iter().any(|r| *r == challenge.realm) && realms.len() < MAX_REALMS {
                    realms.push(challenge.realm.into_owned());
                }
            }
        }
        let mut answered = false;
        for realm in &realms {
            let Some(challenge) =
                sip_auth::preferred_challenge(response.header_values(&name), Some(realm))
            else {
                continue;
            };
            if !answerable(&challenge, credentials) {
                continue;
            }
            let previous = self
                .answers
                .iter()
                .position(|a| a.proxy == proxy && a.challenge.realm == challenge.realm);
            if let Some(index) = previous {
                if !challenge.stale {
                    return Err(AuthFailure::Rejected);
                }
                self.answers.remove(index);
            } else if self.answers.len() >= MAX_REALMS {
                continue;
            }
            self.answers.push(Answer {
                proxy,
                challenge: owned(challenge),
                nonce_count: 0,
            });
            answered = true;
        }
        if answered {
            Ok(())
        } else {
            Err(AuthFailure::Unsupported)
        }
    }

    /// A final response other than a challenge: the next challenge starts a new round.
    pub(crate) fn on_final(&mut self) {
        self.rounds = 0;
    }

    /// Add an Authorization / Proxy-Authorization header per stored answer, for a request
    /// with `method` and `request_uri`.
    pub(crate) fn write(
        &mut self,
        w: &mut MessageWriter,
        method: &str,
        request_uri: &str,
        credentials: Option<&Credentials>,
        rng: &mut StdRng,
    ) {
        let Some(credentials) = credentials else {
            return;
        };
        for answer in &mut self.answers {
            answer.nonce_count = answer.nonce_count.saturating_add(1);
            let cnonce = token(rng);
            let input = sip_auth::AnswerInput {
                method,
                uri: request_uri,
                username: &credentials.username,
                password: &credentials.password,
                cnonce: &cnonce,
                nonce_count: answer.nonce_count,
            };
            // Only answerable challenges are stored, so this always succeeds.
            if let Ok(value) = sip_auth::answer(&answer.challenge, &input) {
                let name = if answer.proxy {
                    "Proxy-Authorization"
                } else {
                    "Authorization"
                };
                w.header(name, &value);
            }
        }
    }
}

/// Whether [`sip_auth::answer`] can compute a response to `challenge` (qop and algorithm).
fn answerable(challenge: &Challenge<'_>, credentials: &Credentials) -> bool {
    let probe = sip_auth::AnswerInput {
        method: "OPTIONS",
        uri: "sip:probe.invalid",
        username: &credentials.username,
        password: &credentials.password,
        cnonce: "0",
        nonce_count: 1,
    };
    sip_auth::answer(challenge, &probe).is_ok()
}

fn owned(challenge: Challenge<'_>) -> Challenge<'static> {
    let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
    Challenge {
        realm: own(challenge.realm),
        nonce: own(challenge.nonce),
        opaque: challenge.opaque.map(own),
        algorithm: challenge.algorithm.map(own),
        qop: challenge.qop.map(own),
        stale: challenge.stale,
    }
}
