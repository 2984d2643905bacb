//! Writing results to stdout (a closed pipe, as with `| head`, is not an error).

use std::io::Write;

use crate::error::CliError;

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
