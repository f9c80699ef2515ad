//! Go's `time.Duration.String()`, which kubeadm prints in "is healthy after 2.250852ms".

use std::time::Duration;

/// `d` as Go prints it: `0s`, `950ns`, `1.5µs`, `2.250852ms`, `2.503022258s`, `4m0s`, `1h0m0s`.
pub fn go(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0 => "0s".into(),
        1..=999 => format!("{ns}ns"),
        1_000..=999_999 => fraction(ns, 1_000, "µs"),
        1_000_000..=999_999_999 => fraction(ns, 1_000_000, "ms"),
        _ => {
            let hours = ns / 3_600_000_000_000;
            let minutes = (ns / 60_000_000_000) % 60;
            let seconds = fraction(ns % 60_000_000_000, 1_000_000_000, "s");
            if hours > 0 {
                format!("{hours}h{minutes}m{seconds}")
            } else if minutes > 0 {
                format!("{minutes}m{seconds}")
            } else {
                seconds
            }
        }
    }
}

/// `value / unit` with the remainder as decimals, trailing zeros dropped (Go's `fmtFrac`).
fn fraction(value: u128, unit: u128, suffix: &str) -> String {
    let whole = value / unit;
    let rest = value % unit;
    if rest == 0 {
        return format!("{whole}{suffix}");
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}{suffix}", digits.trim_end_matches('0'))
}

/// A kubeadm duration string (`4m0s`) as a [`Duration`].
pub fn parse(text: &str) -> Option<Duration> {
    let secs = wasmadm_plugin_sdk::config::validate::parse_duration(text)?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let cases = [
            (0, "0s"),
            (950, "950ns"),
            (1_500, "1.5µs"),
            (2_250_852, "2.250852ms"),
            (5_906_270, "5.90627ms"),
            (2_503_022_258, "2.503022258s"),
            (240_000_000_000, "4m0s"),
            (90_500_000_000, "1m30.5s"),
            (3_600_000_000_000, "1h0m0s"),
        ];
        for (ns, want) in cases {
            assert_eq!(go(Duration::from_nanos(ns)), want);
        }
        assert_eq!(parse("4m0s"), Some(Duration::from_secs(240)));
    }
}
