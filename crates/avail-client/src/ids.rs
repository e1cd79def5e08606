//! Address-book element ids (blink-compat §0.4): they must match `^[a-z_][a-z0-9_.-]*$`
//! case-insensitively, and the SDK generates `id` + epoch microseconds + 6 random digits.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

/// Ids longer than this are refused; generated ones are 24 characters.
const MAX_ID_LEN: usize = 128;

/// Whether `id` is acceptable as a group, contact, uri or policy-element id.
pub fn is_valid_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    id.len() <= MAX_ID_LEN
        && (first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// An id the way the SDK makes one, from the given time and random source.
pub fn id_at(now: SystemTime, rng: &mut impl Rng) -> String {
    let micros = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("id{micros}{:06}", rng.gen_range(0..1_000_000u32))
}

/// A fresh id from the system clock.
pub fn new_id() -> String {
    id_at(SystemTime::now(), &mut rand::thread_rng())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::time::Duration;

    #[test]
    fn generated_ids_follow_the_sdk_shape() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let id = id_at(
            UNIX_EPOCH + Duration::from_micros(1_715_772_400_123_456),
            &mut rng,
        );
        assert!(id.starts_with("id1715772400123456"), "{id}");
        assert_eq!(id.len(), 2 + 16 + 6);
        assert!(is_valid_id(&id));
        assert!(is_valid_id(&new_id()));
    }

    #[test]
    fn validates_the_pattern() {
        for ok in ["a", "_x", "Id1.2-3_", "id1715772400123456042311"] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "1a", "-a", "a b", "a:b", "é", &"a".repeat(129)] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
