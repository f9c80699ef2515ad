//! Times as kubeadm writes them into token Secrets (RFC 3339, UTC, whole seconds) and durations
//! as it reads them (Go's `24h0m0s`) and prints them (`token list`'s TTL column).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `2026-11-26T20:17:20Z` (Go's `time.RFC3339` of a UTC time).
pub fn format_rfc3339(unix: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses RFC 3339 (`Z` or `±hh:mm`, optional fractional seconds, which are dropped).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => UtcOffset::UTC,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let h = rest[1..3].parse::<i8>().ok()?;
            let m = rest[4..6].parse::<i8>().ok()?;
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
    };
    let date = Date::from_calendar_date(
        i32::try_from(year).ok()?,
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .unix_timestamp(),
    )
}

/// A Go duration (`24h0m0s`, `1h30m`, `0`) in whole seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let seconds = kubeadm_config::validate::parse_duration(text)?;
    (seconds.is_finite() && seconds >= 0.0 && seconds < i64::MAX as f64).then_some(seconds as i64)
}

/// Go's `24h0m0s` form of whole seconds.
pub fn format_duration(seconds: i64) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `23h`, `59m`, `6d`, `<invalid>`: apimachinery's `ShortHumanDuration`, which `token list` uses.
pub fn short_human_duration(seconds: i64) -> String {
    if seconds < -1 {
        "<invalid>".into()
    } else if seconds < 0 {
        "0s".into()
    } else if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{}m", seconds / 60)
    } else if seconds < 24 * 3600 {
        format!("{}h", seconds / 3600)
    } else if seconds < 365 * 24 * 3600 {
        format!("{}d", seconds / 3600 / 24)
    } else {
        format!("{}y", seconds / 3600 / 24 / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_795_639_200), "2026-11-25T20:40:00Z");
    }

    #[test]
    fn rfc3339_round_trip_matches_kubeadms_reference_expiration() {
        // The reference Secret's expiration, as kubeadm wrote it.
        let t = parse_rfc3339("2026-11-26T20:17:20Z").expect("parses");
        assert_eq!(format_rfc3339(t), "2026-11-26T20:17:20Z");
        assert_eq!(t, 1_795_724_240);
        assert_eq!(parse_rfc3339("2026-11-27T04:17:20+08:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-26T20:17:20.123456Z"), Some(t));
        for bad in [
            "",
            "2026-11-26",
            "2026-13-26T20:17:20Z",
            "2026-11-26T20:17:20",
            "2026-11-26 20:17:20Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h0m0s"), Some(86_400));
        assert_eq!(parse_duration("1h30m"), Some(5_400));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(format_duration(86_400), "24h0m0s");
        assert_eq!(format_duration(90), "1m30s");
        assert_eq!(short_human_duration(86_399), "23h");
        assert_eq!(short_human_duration(59 * 60 + 59), "59m");
        assert_eq!(short_human_duration(3 * 86_400), "3d");
        assert_eq!(short_human_duration(400 * 86_400), "1y");
        assert_eq!(short_human_duration(-1), "0s");
        assert_eq!(short_human_duration(-5), "<invalid>");
    }
}
