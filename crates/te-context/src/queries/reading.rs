//! How a failed read becomes a `DalError`: a row that does not decode is
//! `InvalidData` naming what was read.

use diesel::result::Error as DieselError;
use te_core::DalError;

/// Maps the error of a query that reads contexts: a stored document that
/// cannot be decoded is [`DalError::InvalidData`] (the whole read fails, no
/// partial result), anything else as usual.
pub(crate) fn reading(what: &'static str) -> impl Fn(DieselError) -> DalError {
    move |err| match err {
        DieselError::DeserializationError(source) => DalError::InvalidData {
            what: what.to_owned(),
            source,
        },
        other => other.into(),
    }
}
