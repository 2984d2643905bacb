//! The `event_data` of each event type, defined once: a builder per payload
//! shape, and the keys as string literals ([`__event_key!`](crate::__event_key))
//! for the statements that write an event in SQL (the claim's, a creation's,
//! a first save's), so that the SQL and the Rust paths cannot drift apart.
//!
//! | event | data |
//! |---|---|
//! | `PipelineCreated` | `{"pipeline_name", "pipeline_version"}` |
//! | `PipelineStatusChanged` | `{"from", "to"}`, and `"reason"` for a cancel |
//! | `PipelineFinalContextSet` | `{"context_id", "replaced"}` |
//! | `TaskCreated` | `{"task_name", "status"}` |
//! | `TaskUpdated` | `{"fields"}`: the names of the fields changed |
//! | `TaskClaimed` | `{"attempt"}` |
//! | `TaskFailed` | `{"error"}` |
//! | `TaskSkipped`, `TaskAbandoned`, a task skipped by a cancel | `{"reason"}` |
//! | `SubStatusChanged` | `{"sub_status"}` |
//! | `RetryScheduled` | `{"retry_at", "attempt"}` |
//! | `ContextSaved` | `{"context_id"}` |

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::ground::status::{PipelineStatus, SubStatus, TaskStatus};

/// A key of an event's data, as a string literal for `concat!` in SQL text.
/// Only the keys that SQL writes are listed; the builders below use them
/// too.
#[doc(hidden)]
#[macro_export]
macro_rules! __event_key {
    (attempt) => {
        "attempt"
    };
    (context_id) => {
        "context_id"
    };
    (task_name) => {
        "task_name"
    };
    (status) => {
        "status"
    };
}

/// An object of `(key, value)` pairs.
fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect::<Map<String, Value>>(),
    )
}

/// `PipelineCreated`: the pipeline's name and version.
pub fn pipeline_created(name: &str, version: &str) -> Value {
    object([
        ("pipeline_name", Value::from(name)),
        ("pipeline_version", Value::from(version)),
    ])
}

/// `PipelineStatusChanged`: the status before and after.
pub fn pipeline_status_changed(from: PipelineStatus, to: PipelineStatus) -> Value {
    object([("from", from.as_str().into()), ("to", to.as_str().into())])
}

/// `PipelineStatusChanged` by a cancel: the status before, `Cancelled`,
/// and the reason.
pub fn pipeline_cancelled(from: PipelineStatus, reason: &str) -> Value {
    object([
        ("from", from.as_str().into()),
        ("to", PipelineStatus::Cancelled.as_str().into()),
        ("reason", reason.into()),
    ])
}

/// `PipelineFinalContextSet`: the new context and the one it replaced, if
/// any.
pub fn pipeline_final_context_set(context_id: Uuid, replaced: Option<Uuid>) -> Value {
    object([
        (
            crate::__event_key!(context_id),
            context_id.to_string().into(),
        ),
        ("replaced", replaced.map(|id| id.to_string()).into()),
    ])
}

/// `TaskCreated`: the task's name and the status it was created in.
pub fn task_created(task_name: &str, status: TaskStatus) -> Value {
    object([
        (crate::__event_key!(task_name), task_name.into()),
        (crate::__event_key!(status), status.as_str().into()),
    ])
}

/// `TaskUpdated`: the names of the fields the update changed.
pub fn task_updated(fields: &[&str]) -> Value {
    object([("fields", fields.into())])
}

/// `TaskClaimed`: the attempt the claim starts.
pub fn task_claimed(attempt: i32) -> Value {
    object([(crate::__event_key!(attempt), attempt.into())])
}

/// `TaskFailed`: the error the runner reported.
pub fn task_failed(error: &str) -> Value {
    object([("error", error.into())])
}

/// A reason: a skip, an abandonment, a task skipped by a cancel.
pub fn reason(reason: &str) -> Value {
    object([("reason", reason.into())])
}

/// `SubStatusChanged`: the new sub-status.
pub fn sub_status_changed(sub_status: Option<SubStatus>) -> Value {
    object([("sub_status", sub_status.map(SubStatus::as_str).into())])
}

/// `RetryScheduled`: when the retry is due (RFC 3339, microseconds, `Z`) and
/// its attempt.
pub fn retry_scheduled(retry_at: DateTime<Utc>, attempt: i32) -> Value {
    object([
        (
            "retry_at",
            retry_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        ),
        (crate::__event_key!(attempt), attempt.into()),
    ])
}

/// `ContextSaved`: the context the task's output was stored as.
pub fn context_saved(context_id: Uuid) -> Value {
    object([(
        crate::__event_key!(context_id),
        context_id.to_string().into(),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_are_the_objects_the_event_table_documents() {
        let id = Uuid::nil();
        assert_eq!(task_claimed(3), json!({"attempt": 3}));
        assert_eq!(
            task_created("t", TaskStatus::Ready),
            json!({"task_name": "t", "status": "Ready"})
        );
        assert_eq!(context_saved(id), json!({"context_id": id}));
        assert_eq!(
            pipeline_final_context_set(id, None),
            json!({"context_id": id, "replaced": null})
        );
        assert_eq!(
            pipeline_cancelled(PipelineStatus::Running, "x"),
            json!({"from": "Running", "to": "Cancelled", "reason": "x"})
        );
        assert_eq!(reason("r"), json!({"reason": "r"}));
    }
}
