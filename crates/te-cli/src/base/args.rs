//! The flags and value parsers several `te` commands share: the database
//! a command works on, durations, and whole numbers within a range.

use std::ops::RangeInclusive;
use std::time::Duration;

use clap::Args;
use clap::builder::RangedI64ValueParser;

/// The database a command works on.
#[derive(Debug, Args)]
pub(crate) struct DbArgs {
    /// Database URL: postgres://user@host/db, sqlite://path/to/file.db.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub(crate) database_url: String,
}

/// Parses a whole number within `range` (as `clap::value_parser!(u32).range`
/// does, with the same messages) into a `usize`.
pub(crate) fn count(range: RangeInclusive<i64>) -> RangedI64ValueParser<usize> {
    RangedI64ValueParser::new().range(range)
}

/// Parses a duration as `humantime` reads it (`500ms`, `60s`, `5m`, `1h`,
/// `7d`, `1h 30m`); a bare whole number is seconds. The error is one line
/// that quotes the input.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        humantime::parse_duration(&format!("{text}s"))
    } else {
        humantime::parse_duration(text)
    };
    // humantime's own message names a character offset or lists every unit
    // it knows; an example reads better on one line.
    parsed.map_err(|_| format!("`{text}` is not a duration (expected e.g. 500ms, 60s, 5m, 1h, 7d)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        let err = parse_duration("soon").unwrap_err();
        assert!(err.starts_with("`soon` is not a duration"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
