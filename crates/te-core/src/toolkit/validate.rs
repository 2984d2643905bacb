//! Input checks shared by every operation: each failure is
//! [`DalError::InvalidInput`] naming the field, raised before anything is written.

use serde_json::Value;

use crate::error::DalError;

/// The most rows one claim or one page may return.
pub const MAX_LIMIT: usize = 10_000;

/// A name must not be empty or only whitespace.
pub fn name(field: &'static str, value: &str) -> Result<(), DalError> {
    if value.trim().is_empty() {
        return Err(DalError::invalid(field, "must not be empty"));
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

/// A context or configuration must be a JSON object.
pub fn json_object(field: &'static str, value: &Value) -> Result<(), DalError> {
    if !value.is_object() {
        return Err(DalError::invalid(
            field,
            format!("must be a JSON object, got {}", json_kind(value)),
        ));
    }
    Ok(())
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
}
