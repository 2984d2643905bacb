//! Rows of the contexts table: create, read, update, delete.

use diesel::prelude::*;
use serde_json::Value;
use te_core::schema::contexts;
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError};
use uuid::Uuid;

use super::reading::reading;

/// Stores `value` (a JSON object) as a new context; an empty object stores
/// nothing and returns `None`.
pub fn create_context(conn: &mut AnyConnection, value: &Value) -> Result<Option<Uuid>, DalError> {
    te_core::toolkit::store_context(conn, value, te_core::toolkit::now())
}

/// The document of context `context_id`: [`DalError::NotFound`] when absent,
/// [`DalError::InvalidData`] when it cannot be decoded.
pub fn read_context(conn: &mut AnyConnection, context_id: Uuid) -> Result<Value, DalError> {
    contexts::table
        .find(bind::id(context_id))
        .select(contexts::value)
        .first::<Value>(conn)
        .optional()
        .map_err(reading("context"))?
        .ok_or_else(|| DalError::context_not_found(context_id))
}

/// Replaces the document of context `context_id` with `value` (a JSON
/// object) and bumps its `updated_at`; [`DalError::NotFound`] when absent.
pub fn update_context(
    conn: &mut AnyConnection,
    context_id: Uuid,
    value: &Value,
) -> Result<(), DalError> {
    let updated = diesel::update(contexts::table.find(bind::id(context_id)))
        .set((
            contexts::value.eq(bind::json(value.clone())),
            contexts::updated_at.eq(bind::ts(te_core::toolkit::now())),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(DalError::context_not_found(context_id));
    }
    Ok(())
}

/// Deletes context `context_id` (links to it from pipeline executions and
/// task metadata become empty); [`DalError::NotFound`] when absent.
pub fn delete_context(conn: &mut AnyConnection, context_id: Uuid) -> Result<(), DalError> {
    let deleted = diesel::delete(contexts::table.find(bind::id(context_id))).execute(conn)?;
    if deleted == 0 {
        return Err(DalError::context_not_found(context_id));
    }
    Ok(())
}
