//! Parsing of the unit-carrying values in the configuration: durations (`500ms`, `1s`,
//! `5m`, `1h`) and rates (`500/s`, `60/m`, `1000/h`).

use std::num::NonZeroU32;
use std::time::Duration;

pub const DURATION_HINT: &str = r#"expected a duration like "500ms", "1s", "5m" or "1h""#;
pub const RATE_HINT: &str = r#"expected "<n>/s", "<n>/m" or "<n>/h" with n > 0"#;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().map_err(|_| DURATION_HINT.to_string())?;
    let millis = match unit {
        "ms" => Some(value),
        "s" => value.checked_mul(1_000),
        "m" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        _ => return Err(DURATION_HINT.to_string()),
    };
    millis.map(Duration::from_millis).ok_or_else(|| "duration is too large".to_string())
}

pub const SIZE_HINT: &str = r#"expected a number of bytes or a size like "64KiB", "512MiB" or "1GiB""#;

/// A byte size: digits with an optional unit (B, KiB, MiB, GiB; KB, MB, GB are taken as
/// the binary units too, as Redis does).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().map_err(|_| SIZE_HINT.to_string())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(SIZE_HINT.to_string()),
    };
    value.checked_mul(1 << shift).ok_or_else(|| "size is too large".to_string())
}

/// A rate as (count, period).
pub fn parse_rate(text: &str) -> Result<(NonZeroU32, Duration), String> {
    let (count, unit) = text.trim().split_once('/').ok_or_else(|| RATE_HINT.to_string())?;
    let count: NonZeroU32 = count.trim().parse().map_err(|_| RATE_HINT.to_string())?;
    let period = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(RATE_HINT.to_string()),
    };
    Ok((count, period))
}

/// Formats a duration back in the units the parser takes, for `/config_dump`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 3_600_000 == 0 && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1_000 == 0 {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "5", "s", "1.5s", "-1s", "5 minutes", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn rates() {
        let (n, p) = parse_rate("500/s").unwrap();
        assert_eq!((n.get(), p), (500, Duration::from_secs(1)));
        let (n, p) = parse_rate("60/m").unwrap();
        assert_eq!((n.get(), p), (60, Duration::from_secs(60)));
        for bad in ["0/s", "500", "500/d", "x/s", "/s"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} parsed");
        }
    }
}
