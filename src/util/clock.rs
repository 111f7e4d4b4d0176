//! Calendar dates and the few places that read the clock.
//!
//! Rendering never reads the clock: templates see the run's as-of date. The
//! clock is only read for the default as-of date and for the `started_at` /
//! `finished_at` timestamps of the manifest.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A proleptic Gregorian calendar date (`YYYY-MM-DD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, 1..=9999.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31 (checked against the month).
    pub day: u8,
}

impl Date {
    /// Parses a strict ISO 8601 calendar date `YYYY-MM-DD` and checks that the
    /// day exists (`2026-02-30` is refused).
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = &s[r];
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let date = Date {
            year: year as i32,
            month: month as u8,
            day: day as u8,
        };
        (year >= 1 && (1..=12).contains(&month) && day >= 1 && day <= date.days_in_month())
            .then_some(date)
    }

    fn days_in_month(&self) -> u32 {
        match self.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            _ if is_leap(self.year) => 29,
            _ => 28,
        }
    }

    /// Today's date in UTC.
    pub fn today_utc() -> Date {
        let (date, _) = split_unix(unix_seconds());
        date
    }

    /// The day after.
    pub fn next(&self) -> Date {
        Date::from_unix_days(self.unix_days() + 1)
    }

    /// Days since the Unix epoch (1970-01-01 is 0).
    pub fn unix_days(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = i64::from(self.year) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days after the Unix epoch.
    pub fn from_unix_days(days: i64) -> Date {
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Seconds since 1970 (UTC), from the system clock.
pub fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn split_unix(secs: i64) -> (Date, i64) {
    (
        Date::from_unix_days(secs.div_euclid(86_400)),
        secs.rem_euclid(86_400),
    )
}

/// The current time as an RFC 3339 UTC timestamp, e.g. `2026-11-22T10:47:03Z`.
pub fn now_rfc3339() -> String {
    rfc3339_utc(unix_seconds())
}

/// Whether `s` is a time in the one form [`rfc3339_utc`] writes
/// (`YYYY-MM-DDTHH:MM:SSZ`, a real day and time), which sorts as text.
pub fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let two = |i: usize, max: u8| {
        b[i].is_ascii_digit()
            && b[i + 1].is_ascii_digit()
            && (b[i] - b'0') * 10 + (b[i + 1] - b'0') <= max
    };
    b.len() == 20
        && Date::parse(&s[..10]).is_some()
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && two(11, 23)
        && two(14, 59)
        && two(17, 59)
}

/// Seconds since 1970 as an RFC 3339 UTC timestamp: the one form of time
/// that sorts as text in time order.
pub fn rfc3339_utc(unix: i64) -> String {
    let (date, s) = split_unix(unix);
    format!("{date}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Seconds since 1970 of a time [`is_rfc3339_utc`] accepts (`None` for
/// anything else).
pub fn rfc3339_seconds(at: &str) -> Option<i64> {
    if !is_rfc3339_utc(at) {
        return None;
    }
    let day = Date::parse(&at[..10])?;
    let part = |r: std::ops::Range<usize>| at[r].parse::<i64>().ok();
    Some(day.unix_days() * 86_400 + part(11..13)? * 3600 + part(14..16)? * 60 + part(17..19)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_dates_only() {
        assert_eq!(Date::parse("2026-11-22").unwrap().to_string(), "2026-11-22");
        assert!(Date::parse("2024-02-29").is_some());
        assert!(Date::parse("2026-02-29").is_none());
        assert!(Date::parse("2026-13-01").is_none());
        assert!(Date::parse("2026-1-01").is_none());
        assert!(Date::parse("22.11.2026").is_none());
        assert!(Date::parse("+026-11-22").is_none());
    }

    #[test]
    fn converts_unix_days() {
        assert_eq!(Date::from_unix_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_unix_days(20_414).to_string(), "2025-11-22");
        assert_eq!(Date::from_unix_days(11_016).to_string(), "2000-02-29");
        for days in [-800_000, -1, 0, 59, 11_016, 20_414, 3_000_000] {
            assert_eq!(Date::from_unix_days(days).unix_days(), days);
        }
    }

    #[test]
    fn knows_its_own_timestamps() {
        assert!(is_rfc3339_utc(&rfc3339_utc(unix_seconds())));
        assert!(is_rfc3339_utc("2026-12-31T23:59:59Z"));
        for bad in [
            "2026-12-31T24:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-12-31T10:00:00+01:00",
            "2026-12-31 10:00:00Z",
            "2026-12-31T10:00Z",
        ] {
            assert!(!is_rfc3339_utc(bad), "{bad}");
        }
        assert_eq!(
            Date::parse("2028-02-28").unwrap().next().to_string(),
            "2028-02-29"
        );
    }
}
