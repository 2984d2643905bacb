//! Writing results to stdout (a closed pipe, as with `| head`, is not an
//! error), and durations as people read them.

use std::io::Write;
use std::time::Duration;

use crate::base::error::CliError;

/// Writes `text` to stdout as is.
pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(CliError::Io {
            what: "cannot write to stdout".into(),
            source,
        }),
    }
}

/// A duration for people: `850µs`, `12.3ms`, `4.56s`; whole seconds or
/// milliseconds without decimals (`60s`, `500ms`).
pub(crate) fn human_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros >= 1_000_000 && micros.is_multiple_of(1_000_000) {
        format!("{}s", d.as_secs())
    } else if micros >= 1_000_000 {
        format!("{:.2}s", d.as_secs_f64())
    } else if micros >= 1_000 && micros.is_multiple_of(1_000) {
        format!("{}ms", d.as_millis())
    } else if micros >= 1_000 {
        format!("{:.1}ms", micros as f64 / 1_000.0)
    } else {
        format!("{micros}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_micros(850)), "850µs");
        assert_eq!(human_duration(Duration::from_micros(12_345)), "12.3ms");
        assert_eq!(human_duration(Duration::from_millis(4_560)), "4.56s");
        assert_eq!(human_duration(Duration::from_secs(60)), "60s");
        assert_eq!(human_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(human_duration(Duration::ZERO), "0µs");
    }
}
