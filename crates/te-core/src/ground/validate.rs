//! Input checks shared by every operation: each failure is
//! [`DalError::InvalidInput`] naming the field, raised before anything is written.
//!
//! Every rule is decided here, once, so that PostgreSQL and SQLite give the
//! same answer: a value either round-trips unchanged on both backends or is
//! refused on both before anything is written.

use chrono::{DateTime, Utc};
use serde_json::{Number, Value};

use crate::ground::error::DalError;

/// The most rows one claim or one page may return.
pub const MAX_LIMIT: usize = 10_000;

/// The longest name (task name, pipeline name, pipeline version) in bytes of
/// UTF-8. PostgreSQL's unique index on `(pipeline_execution_id, task_name)`
/// holds keys of this size; a longer name is refused on both backends.
pub const MAX_NAME_BYTES: usize = 1_024;

/// The deepest nesting of arrays and objects a stored JSON value may have
/// (`{}` and `[]` are depth 1, `{"a": [1]}` depth 2, a scalar depth 0).
///
/// Every read path parses stored JSON back with serde_json, which stops at
/// 128 levels; 64 leaves room for the value to be embedded in another.
pub const MAX_JSON_DEPTH: usize = 64;

/// The earliest instant both backends store, in microseconds since the Unix
/// epoch: PostgreSQL's `timestamptz` starts at 4714-11-24 00:00:00 UTC BC
/// (proleptic Gregorian year -4713). Its upper end, 294276 AD, lies beyond
/// the last instant `chrono` can represent, so every later instant is stored.
pub const MIN_INSTANT_MICROS: i64 = -210_866_803_200_000_000;

/// The earliest instant both backends store, as a [`DateTime`]: see
/// [`MIN_INSTANT_MICROS`].
pub fn earliest_instant() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(MIN_INSTANT_MICROS)
        .expect("MIN_INSTANT_MICROS is inside chrono's range")
}

/// A name (task name, pipeline name, pipeline version, or a name passed to a
/// lookup): not empty or only whitespace, no NUL byte, at most
/// [`MAX_NAME_BYTES`] bytes. A lookup by a name that could never be stored is
/// refused the same way rather than reported as not found.
pub fn name(field: &'static str, value: &str) -> Result<(), DalError> {
    if value.trim().is_empty() {
        return Err(DalError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(DalError::invalid(
            field,
            format!(
                "must be at most {MAX_NAME_BYTES} bytes of UTF-8, got {}",
                value.len()
            ),
        ));
    }
    text(field, value)
}

/// A free text (an error, a reason, error details): no NUL byte, which
/// PostgreSQL cannot store in `text` or `jsonb`. No length limit.
pub fn text(field: &'static str, value: &str) -> Result<(), DalError> {
    if let Some(at) = value.find('\0') {
        return Err(DalError::invalid(
            field,
            format!("must not contain a NUL byte (found at byte {at})"),
        ));
    }
    Ok(())
}

/// An instant to store or compare with stored instants (`retry_at`, filter
/// bounds): not before [`earliest_instant`]. Every later instant `chrono`
/// represents is accepted.
pub fn instant(field: &'static str, value: DateTime<Utc>) -> Result<(), DalError> {
    if value < earliest_instant() {
        return Err(DalError::invalid(
            field,
            format!(
                "must not be before {} (the earliest instant PostgreSQL stores), got {}",
                earliest_instant().format("%Y-%m-%dT%H:%M:%SZ"),
                value.format("%Y-%m-%dT%H:%M:%S%.fZ")
            ),
        ));
    }
    Ok(())
}

/// Any JSON value to store, checked without recursion and before anything
/// else walks it, so that an arbitrarily deep value is refused without
/// exhausting the stack:
///
/// - nested at most [`MAX_JSON_DEPTH`] levels;
/// - no U+0000 in any string or object key (PostgreSQL's `jsonb` refuses it);
/// - no number that PostgreSQL's `jsonb` would give back different: `-0.0`
///   (it returns `0.0`), and an integral float that serde_json writes with an
///   exponent while it fits a 64-bit integer, such as `1e16` (it returns the
///   integer `10000000000000000`). Write such numbers as integers, or as
///   `0.0`. Every other finite float comes back identical.
pub fn json(field: &'static str, value: &Value) -> Result<(), DalError> {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((value, depth)) = stack.pop() {
        match value {
            Value::Null | Value::Bool(_) => {}
            Value::Number(number) => json_number(field, number)?,
            Value::String(string) => json_string(field, string)?,
            Value::Array(items) => {
                let depth = json_depth(field, depth)?;
                stack.extend(items.iter().map(|item| (item, depth)));
            }
            Value::Object(map) => {
                let depth = json_depth(field, depth)?;
                for (key, item) in map {
                    json_string(field, key)?;
                    stack.push((item, depth));
                }
            }
        }
    }
    Ok(())
}

/// Drops JSON values of any depth level by level, without recursion.
///
/// Dropping a `serde_json::Value` the ordinary way recurses once per level
/// of nesting, and a few thousand levels exhaust a thread's stack. The
/// operations that take a JSON value by value and refuse it call this.
pub fn discard(values: impl IntoIterator<Item = Value>) {
    let mut stack: Vec<Value> = values.into_iter().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, item)| item)),
            _ => {}
        }
    }
}

fn json_depth(field: &'static str, parent: usize) -> Result<usize, DalError> {
    let depth = parent + 1;
    if depth > MAX_JSON_DEPTH {
        return Err(DalError::invalid(
            field,
            format!("is nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects"),
        ));
    }
    Ok(depth)
}

fn json_string(field: &'static str, value: &str) -> Result<(), DalError> {
    if value.contains('\0') {
        return Err(DalError::invalid(
            field,
            "must not contain U+0000 in a string or key",
        ));
    }
    Ok(())
}

fn json_number(field: &'static str, number: &Number) -> Result<(), DalError> {
    let Some(float) = number.as_f64().filter(|_| number.is_f64()) else {
        return Ok(());
    };
    if float == 0.0 && float.is_sign_negative() {
        return Err(DalError::invalid(
            field,
            "must not contain -0.0 (PostgreSQL stores it as 0.0); write 0.0",
        ));
    }
    // 2^64 and -2^63: PostgreSQL writes an integral number without exponent
    // or decimal point, and serde_json reads it back as an integer when it
    // fits one.
    let fits_integer =
        (-9_223_372_036_854_775_808.0..18_446_744_073_709_551_616.0).contains(&float);
    if float.fract() == 0.0 && fits_integer && !number.to_string().contains('.') {
        return Err(DalError::invalid(
            field,
            format!(
                "must not contain the float {number}, which PostgreSQL gives back as an integer; write it as an integer"
            ),
        ));
    }
    Ok(())
}

/// A count such as `attempt` or `max_attempts` must be at least 1.
pub fn at_least_one(field: &'static str, value: i32) -> Result<(), DalError> {
    if value < 1 {
        return Err(DalError::invalid(
            field,
            format!("must be at least 1, got {value}"),
        ));
    }
    Ok(())
}

/// A context or configuration must be a JSON object, and pass [`json`].
pub fn json_object(field: &'static str, value: &Value) -> Result<(), DalError> {
    if !value.is_object() {
        return Err(DalError::invalid(
            field,
            format!("must be a JSON object, got {}", json_kind(value)),
        ));
    }
    json(field, value)
}

/// A claim or page size must be between 1 and [`MAX_LIMIT`]; returns it as `i64`.
pub fn limit(field: &'static str, value: usize) -> Result<i64, DalError> {
    if value == 0 || value > MAX_LIMIT {
        return Err(DalError::invalid(
            field,
            format!("must be between 1 and {MAX_LIMIT}, got {value}"),
        ));
    }
    Ok(value as i64)
}

/// The most queues one claim or wait may name.
pub const MAX_QUEUES: usize = 1_000;

/// A list of queues to claim from or wait for: not empty, at most
/// [`MAX_QUEUES`], each a valid [`name`]; returns them sorted, without
/// repeats.
pub fn queues(field: &'static str, value: &[&str]) -> Result<Vec<String>, DalError> {
    if value.is_empty() {
        return Err(DalError::invalid(field, "must name at least one queue"));
    }
    if value.len() > MAX_QUEUES {
        return Err(DalError::invalid(
            field,
            format!("must name at most {MAX_QUEUES} queues, got {}", value.len()),
        ));
    }
    for queue in value {
        name(field, queue)?;
    }
    let mut queues: Vec<String> = value.iter().map(|queue| (*queue).to_owned()).collect();
    queues.sort_unstable();
    queues.dedup();
    Ok(queues)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rejects_what_it_should() {
        assert!(name("task_name", " ").is_err());
        assert!(name("task_name", "x").is_ok());
        assert!(at_least_one("max_attempts", 0).is_err());
        assert!(json_object("context", &json!([1])).is_err());
        assert!(json_object("context", &json!({})).is_ok());
        assert!(limit("limit", 0).is_err());
        assert!(limit("limit", MAX_LIMIT + 1).is_err());
        assert_eq!(limit("limit", 5).unwrap(), 5);
    }

    #[test]
    fn names_have_no_nul_and_a_length_limit() {
        assert!(name("task_name", "a\0b").is_err());
        assert!(name("task_name", &"x".repeat(MAX_NAME_BYTES)).is_ok());
        assert!(name("task_name", &"x".repeat(MAX_NAME_BYTES + 1)).is_err());
        // The limit counts bytes: 512 two-byte characters fit, 513 do not.
        assert!(name("task_name", &"é".repeat(MAX_NAME_BYTES / 2)).is_ok());
        assert!(name("task_name", &"é".repeat(MAX_NAME_BYTES / 2 + 1)).is_err());
        assert!(text("error", "").is_ok());
        assert!(text("error", "line\nline").is_ok());
        assert!(text("error", "nul\0").is_err());
    }

    #[test]
    fn instants_start_at_postgres_earliest() {
        let earliest = earliest_instant();
        assert_eq!(
            earliest.format("%Y-%m-%d %H:%M:%S").to_string(),
            "-4713-11-24 00:00:00"
        );
        assert!(instant("retry_at", earliest).is_ok());
        assert!(instant("retry_at", DateTime::<Utc>::MAX_UTC).is_ok());
        assert!(instant("retry_at", earliest - chrono::Duration::microseconds(1)).is_err());
        assert!(instant("retry_at", DateTime::<Utc>::MIN_UTC).is_err());
    }

    fn nested(depth: usize) -> Value {
        let mut value = json!(1);
        for level in 0..depth {
            value = if level % 2 == 0 {
                json!([value])
            } else {
                json!({ "k": value })
            };
        }
        value
    }

    #[test]
    fn json_depth_is_limited() {
        assert!(json("context", &json!(1)).is_ok());
        assert!(json("context", &nested(MAX_JSON_DEPTH)).is_ok());
        let err = json("context", &nested(MAX_JSON_DEPTH + 1)).unwrap_err();
        assert!(matches!(
            err,
            DalError::InvalidInput {
                field: "context",
                ..
            }
        ));
        // What the check accepts, serde_json parses back.
        let text = serde_json::to_string(&nested(MAX_JSON_DEPTH)).unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_ok());
    }

    #[test]
    fn json_nul_is_refused_in_strings_and_keys() {
        assert!(json("context", &json!({"k": "a\u{0}"})).is_err());
        assert!(json("context", &json!({"a\u{0}": 1})).is_err());
        assert!(json("context", &json!([["\u{0}"]])).is_err());
        assert!(json("context", &json!({"k": "\u{1} é \\u0000"})).is_ok());
    }

    #[test]
    fn json_numbers_that_postgres_changes_are_refused() {
        assert!(json("context", &json!(-0.0)).is_err());
        assert!(json("context", &json!(1e16)).is_err());
        assert!(json("context", &json!(-1e18)).is_err());
        for ok in [
            json!(0.0),
            json!(1.0),
            json!(1e15 + 0.5),
            json!(1.5e-7),
            json!(1e300),
            json!(-2.5e300),
            json!(5e-324),
            json!(u64::MAX),
            json!(i64::MIN),
        ] {
            assert!(json("context", &ok).is_ok(), "{ok}");
        }
    }
}
