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
        page_size(self.limit, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    }

    /// Checks every field: the page size, `task_name` (see
    /// [`validate::name`]), and every time bound (see [`validate::instant`]:
    /// not before [`validate::earliest_instant`]).
    pub fn validate(&self) -> Result<i64, DalError> {
        check_name_and_bounds(
            ("task_name", self.task_name.as_deref()),
            &[
                ("created_after", self.created_after),
                ("created_before", self.created_before),
                ("updated_after", self.updated_after),
                ("updated_before", self.updated_before),
            ],
        )?;
        self.page_size()
    }
}

/// A filter's `limit`, checked: `default` for 0, [`DalError::InvalidInput`]
/// naming `limit` when negative or above `max`.
pub(crate) fn page_size(limit: i64, default: i64, max: i64) -> Result<i64, DalError> {
    match limit {
        0 => Ok(default),
        n if n < 0 => Err(DalError::invalid(
            "limit",
            format!("must not be negative, got {n}"),
        )),
        n if n > max => Err(DalError::invalid(
            "limit",
            format!("must be at most {max}, got {n}"),
        )),
        n => Ok(n),
    }
}

/// A filter's name (see [`validate::name`]) and time bounds (see
/// [`validate::instant`]), each checked when given, under its field's name.
pub(crate) fn check_name_and_bounds(
    (name_field, name): (&'static str, Option<&str>),
    bounds: &[(&'static str, Option<DateTime<Utc>>)],
) -> Result<(), DalError> {
    if let Some(name) = name {
        validate::name(name_field, name)?;
    }
    for &(field, bound) in bounds {
        if let Some(bound) = bound {
            validate::instant(field, bound)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEFAULT_PIPELINE_PAGE_SIZE, MAX_PIPELINE_PAGE_SIZE};

    /// The page size a default filter with this `limit` validates to.
    type PageSize = fn(i64) -> Result<i64, DalError>;

    #[test]
    fn page_sizes_of_both_filters() {
        let task: PageSize = |limit| {
            TaskFilter {
                limit,
                ..TaskFilter::default()
            }
            .validate()
        };
        let pipeline: PageSize = |limit| {
            crate::PipelineFilter {
                limit,
                ..crate::PipelineFilter::default()
            }
            .validate()
        };
        let filters = [
            (task, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
            (pipeline, DEFAULT_PIPELINE_PAGE_SIZE, MAX_PIPELINE_PAGE_SIZE),
        ];
        for (page_size, default, max) in filters {
            assert_eq!(page_size(0).unwrap(), default);
            assert_eq!(page_size(7).unwrap(), 7);
            assert_eq!(page_size(max).unwrap(), max);
            for refused in [-1, max + 1] {
                assert!(matches!(
                    page_size(refused),
                    Err(DalError::InvalidInput { field: "limit", .. })
                ));
            }
        }
        assert_eq!(MAX_PIPELINE_PAGE_SIZE, 1_000);
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
