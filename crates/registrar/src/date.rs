//! The `Date` header value (RFC 3261 §20.17: an RFC 1123 date, always GMT).

use std::time::{Duration, UNIX_EPOCH};

/// `Tue, 14 Nov 2023 22:13:20 GMT` for Unix time `secs` (times before 1970 are clamped to it:
/// the registrar only ever stamps the present).
pub(crate) fn http_date(secs: i64) -> String {
    let secs = u64::try_from(secs).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::http_date;

    #[test]
    fn formats_known_instants() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(4_133_980_799), "Fri, 31 Dec 2100 23:59:59 GMT");
    }
}
