//! Digest access authentication for SIP and HTTP, sans-IO: the server side (challenges,
//! verification) and the client side ([`answer`] to a challenge).
//!
//! Implements the digest computations of RFC 2617 §3.2.2 (and the RFC 2069 form without
//! `qop`, MD5 only), RFC 7616 §3.4.1–§3.4.3 (MD5, SHA-256 and their `-sess` variants, `qop=auth`)
//! as used by SIP (RFC 3261 §22.4, RFC 8760), plus a stateless nonce scheme with replay
//! protection (RFC 7616 §3.3 nonce considerations, §5.5 replay attacks).
//!
//! Nothing here reads a clock or touches the network: the caller passes the current time in
//! Unix seconds and the stored HA1 of the account. The server side never needs a password
//! ([`ha1`] exists for provisioning accounts); the client side hashes the one it is given.

mod client;
mod digest;
mod nonce;

pub use client::{answer, preferred_challenge, AnswerError, AnswerInput};
pub use digest::{ha1, Algorithm, DigestCredentials};
pub use nonce::{
    generate_secret, AuthOutcome, NonceStatus, Nonces, DEFAULT_MAX_TRACKED, DEFAULT_NONCE_LIFETIME,
};
