//! `TaskFilter`: what `list_tasks` selects, and how its page size is checked.

use chrono::{DateTime, Utc};
use te_core::toolkit::validate;
use te_core::{DalError, TaskStatus};
use uuid::Uuid;

/// The page size `list_tasks` uses when [`TaskFilter::limit`] is 0.
pub const DEFAULT_PAGE_SIZE: i64 = 100;

/// The largest page `list_tasks` returns; a larger [`TaskFilter::limit`] is
/// [`DalError::InvalidInput`] (never silently clamped, so that a caller never
/// mistakes a short page for the end).
pub const MAX_PAGE_SIZE: i64 = validate::MAX_LIMIT as i64;

/// Which task executions `list_tasks` returns, and which page of them.
///
/// Every field left at its default selects everything: `TaskFilter::default()`
/// is the first page of all task executions. Results are ordered by
/// `(created_at, id)`; pass the `id` of the last row of a page as
/// [`TaskFilter::after`] to get the next page (keyset pagination: rows
/// created or deleted meanwhile never shift the pages, and no row is returned
/// twice or skipped).
///
/// Time bounds are exclusive: `created_after: Some(t)` keeps rows created
/// strictly after `t`, `created_before: Some(t)` rows created strictly before `t`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    /// Only task executions of this pipeline execution.
    pub pipeline_execution_id: Option<Uuid>,
    /// Only task executions in one of these statuses; empty: any status.
    pub statuses: Vec<TaskStatus>,
    /// Only task executions with exactly this name (not empty).
    pub task_name: Option<String>,
    /// Only rows created strictly after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Only rows created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
    /// Only rows last changed strictly after this instant.
    pub updated_after: Option<DateTime<Utc>>,
    /// Only rows last changed strictly before this instant.
    pub updated_before: Option<DateTime<Utc>>,
    /// Most rows to return: 0 means [`DEFAULT_PAGE_SIZE`]; at most
    /// [`MAX_PAGE_SIZE`]; negative is [`DalError::InvalidInput`].
    pub limit: i64,
    /// The `id` of the last row of the previous page; `None` for the first
    /// page. An id that names no task execution is [`DalError::NotFound`].
    pub after: Option<Uuid>,
}

impl TaskFilter {
    /// A filter selecting every task execution of `pipeline_id`.
    pub fn for_pipeline(pipeline_id: Uuid) -> Self {
        TaskFilter {
            pipeline_execution_id: Some(pipeline_id),
            ..TaskFilter::default()
        }
    }

    /// The page size this filter asks for, checked: [`DEFAULT_PAGE_SIZE`] for
    /// 0, [`DalError::InvalidInput`] when negative or above [`MAX_PAGE_SIZE`].
    pub fn page_size(&self) -> Result<i64, DalError> {
        match self.limit {
            0 => Ok(DEFAULT_PAGE_SIZE),
            n if n < 0 => Err(DalError::invalid(
                "limit",
                format!("must not be negative, got {n}"),
            )),
            n if n > MAX_PAGE_SIZE => Err(DalError::invalid(
                "limit",
                format!("must be at most {MAX_PAGE_SIZE}, got {n}"),
            )),
            n => Ok(n),
        }
    }

    /// Checks every field: the page size, `task_name` (see
    /// [`validate::name`]), and every time bound (see [`validate::instant`]:
    /// not before [`validate::earliest_instant`]).
    pub fn validate(&self) -> Result<i64, DalError> {
        if let Some(name) = &self.task_name {
            validate::name("task_name", name)?;
        }
        for (field, bound) in [
            ("created_after", self.created_after),
            ("created_before", self.created_before),
            ("updated_after", self.updated_after),
            ("updated_before", self.updated_before),
        ] {
            if let Some(bound) = bound {
                validate::instant(field, bound)?;
            }
        }
        self.page_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        let with = |limit| TaskFilter {
            limit,
            ..TaskFilter::default()
        };
        assert_eq!(with(0).page_size().unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(with(7).page_size().unwrap(), 7);
        assert_eq!(with(MAX_PAGE_SIZE).page_size().unwrap(), MAX_PAGE_SIZE);
        assert!(matches!(
            with(-1).page_size(),
            Err(DalError::InvalidInput { field: "limit", .. })
        ));
        assert!(matches!(
            with(MAX_PAGE_SIZE + 1).page_size(),
            Err(DalError::InvalidInput { field: "limit", .. })
        ));
    }

    #[test]
    fn empty_task_name_is_rejected() {
        let filter = TaskFilter {
            task_name: Some(" ".into()),
            ..TaskFilter::default()
        };
        assert!(matches!(
            filter.validate(),
            Err(DalError::InvalidInput {
                field: "task_name",
                ..
            })
        ));
    }
}
