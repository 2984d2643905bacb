//! Rows of the contexts table: the one way a context document is written first.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::connection::AnyConnection;
use crate::schema::contexts;
use crate::{DalError, bind};

/// Inserts `value` as a new context row stamped `now` and returns its id.
/// The caller has checked that `value` is a JSON object. Call inside the
/// transaction that links the context to its owner.
pub fn insert_context(
    conn: &mut AnyConnection,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<Uuid, DalError> {
    let id = crate::new_id();
    diesel::insert_into(contexts::table)
        .values((
            contexts::id.eq(bind::id(id)),
            contexts::value.eq(bind::json(value.clone())),
            contexts::created_at.eq(bind::ts(now)),
            contexts::updated_at.eq(bind::ts(now)),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Like [`insert_context`], but an empty object stores nothing and returns
/// `None`: an empty context and no context are the same.
pub fn store_context(
    conn: &mut AnyConnection,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, DalError> {
    if value.as_object().is_some_and(|object| object.is_empty()) {
        return Ok(None);
    }
    insert_context(conn, value, now).map(Some)
}
