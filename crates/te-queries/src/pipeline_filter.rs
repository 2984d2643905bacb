//! `PipelineFilter`: what `list_pipelines` selects, and how its page size is checked.

use chrono::{DateTime, Utc};
use te_core::{DalError, PipelineStatus};
use uuid::Uuid;

use crate::filter::{check_name_and_bounds, page_size};

/// The page size `list_pipelines` uses when [`PipelineFilter::limit`] is 0.
pub const DEFAULT_PIPELINE_PAGE_SIZE: i64 = 100;

/// The largest page `list_pipelines` returns; a larger
/// [`PipelineFilter::limit`] is [`DalError::InvalidInput`].
pub const MAX_PIPELINE_PAGE_SIZE: i64 = 1_000;

/// Which pipeline executions `list_pipelines` returns, and which page of them.
///
/// `PipelineFilter::default()` is the first page of all pipeline executions.
/// Results are ordered by `(created_at, id)`; pass the `id` of the last row
/// of a page as [`PipelineFilter::after`] to get the next one (keyset
/// pagination: rows inserted meanwhile never make a row appear twice or be
/// skipped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineFilter {
    /// Only pipeline executions in one of these statuses; empty: any status.
    pub statuses: Vec<PipelineStatus>,
    /// Only pipeline executions of exactly this pipeline name (not empty).
    pub pipeline_name: Option<String>,
    /// Only rows created at or after this instant (inclusive).
    pub created_after: Option<DateTime<Utc>>,
    /// Only rows created strictly before this instant (exclusive).
    pub created_before: Option<DateTime<Utc>>,
    /// Most rows to return: 0 means [`DEFAULT_PIPELINE_PAGE_SIZE`]; at most
    /// [`MAX_PIPELINE_PAGE_SIZE`]; negative is [`DalError::InvalidInput`].
    pub limit: i64,
    /// The `id` of the last row of the previous page; `None` for the first
    /// page. An id that names no pipeline execution is [`DalError::NotFound`].
    pub after: Option<Uuid>,
}

impl PipelineFilter {
    /// Checks every field and returns the page size: a non-empty
    /// `pipeline_name`, and a limit between 0 (the default page) and
    /// [`MAX_PIPELINE_PAGE_SIZE`].
    pub fn validate(&self) -> Result<i64, DalError> {
        check_name_and_bounds(
            ("pipeline_name", self.pipeline_name.as_deref()),
            &[
                ("created_after", self.created_after),
                ("created_before", self.created_before),
            ],
        )?;
        page_size(
            self.limit,
            DEFAULT_PIPELINE_PAGE_SIZE,
            MAX_PIPELINE_PAGE_SIZE,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Page sizes: `crate::filter`'s test covers both filters.

    #[test]
    fn empty_pipeline_name_is_rejected() {
        let unnamed = PipelineFilter {
            pipeline_name: Some(String::new()),
            ..PipelineFilter::default()
        };
        assert!(matches!(
            unnamed.validate(),
            Err(DalError::InvalidInput {
                field: "pipeline_name",
                ..
            })
        ));
    }
}
