//! `xs:dateTime` to Unix seconds, for `cp:validity` intervals (RFC 4745 §7.3).

/// Parses `[-]YYYY-MM-DDThh:mm:ss[.fraction][Z|(+|-)hh:mm]` into seconds since the Unix epoch,
/// dropping the fraction. A time without a zone is taken as UTC: RFC 4745 leaves it undefined,
/// and a server has no better local time for the presentity.
pub(crate) fn parse_unix(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.rsplitn(3, '-');
    let day = number(date_parts.next()?, 2)?;
    let month = number(date_parts.next()?, 2)?;
    let year_text = date_parts.next()?;
    if year_text.len() < 4 || year_text.len() > 9 {
        return None;
    }
    let year = number(year_text, year_text.len())?;
    let year = if negative { -year } else { year };

    let (clock, offset) = split_zone(time)?;
    let hour = number(clock.get(0..2)?, 2)?;
    let minute = number(clock.get(3..5)?, 2)?;
    let second = number(clock.get(6..8)?, 2)?;
    if clock.get(2..3)? != ":" || clock.get(5..6)? != ":" {
        return None;
    }
    let fraction = &clock[8..];
    if !fraction.is_empty() {
        let digits = fraction.strip_prefix('.')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let end_of_day = hour == 24 && minute == 0 && second == 0;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || (hour > 23 && !end_of_day)
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second - offset)
}

/// Splits the time of day from its zone, returning the zone's offset in seconds.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let split = time.len().saturating_sub(6);
    if split > 0 && time.is_char_boundary(split) {
        let (clock, zone) = time.split_at(split);
        let sign = match zone.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Some((time, 0)),
        };
        if zone.as_bytes()[3] != b':' {
            return None;
        }
        let hours = number(zone.get(1..3)?, 2)?;
        let minutes = number(zone.get(4..6)?, 2)?;
        if hours > 14 || minutes > 59 {
            return None;
        }
        return Some((clock, sign * (hours * 3_600 + minutes * 60)));
    }
    Some((time, 0))
}

fn number(text: &str, len: usize) -> Option<i64> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_unix;

    #[test]
    fn parses_zones_and_fractions() {
        assert_eq!(parse_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_unix("1970-01-01T00:00:00"), Some(0));
        assert_eq!(
            parse_unix("2025-05-15T10:22:05.123456+02:00"),
            Some(1_747_297_325)
        );
        assert_eq!(parse_unix("2025-05-15T08:22:05Z"), Some(1_747_297_325));
        assert_eq!(parse_unix("2026-02-01T00:00:00-05:00"), Some(1_769_922_000));
        assert_eq!(
            parse_unix("2024-02-29T24:00:00Z"),
            parse_unix("2024-03-01T00:00:00Z")
        );
        assert_eq!(parse_unix("1969-12-31T23:59:59Z"), Some(-1));
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "2025-05-15",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-01-01T25:00:00Z",
            "2025-01-01T10:00Z",
            "2025-01-01T10:00:00.Z",
            "2025-01-01T10:00:00+2:00",
            "25-01-01T10:00:00Z",
            "2025-01-01T10:00:00+15:00",
            "２０２５-01-01T10:00:00Z",
        ] {
            assert_eq!(parse_unix(bad), None, "{bad}");
        }
    }
}
