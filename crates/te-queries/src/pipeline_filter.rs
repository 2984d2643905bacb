//! `PipelineFilter`: what `list_pipelines` selects, and how its page size is checked.

use chrono::{DateTime, Utc};
use te_core::toolkit::validate;
use te_core::{DalError, PipelineStatus};
use uuid::Uuid;

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
        if let Some(name) = &self.pipeline_name {
            validate::name("pipeline_name", name)?;
        }
        for (field, instant) in [
            ("created_after", self.created_after),
            ("created_before", self.created_before),
        ] {
            if let Some(instant) = instant {
                validate::instant(field, instant)?;
            }
        }
        match self.limit {
            0 => Ok(DEFAULT_PIPELINE_PAGE_SIZE),
            n if n < 0 => Err(DalError::invalid(
                "limit",
                format!("must not be negative, got {n}"),
            )),
            n if n > MAX_PIPELINE_PAGE_SIZE => Err(DalError::invalid(
                "limit",
                format!("must be at most {MAX_PIPELINE_PAGE_SIZE}, got {n}"),
            )),
            n => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_and_names() {
        let with = |limit| PipelineFilter {
            limit,
            ..PipelineFilter::default()
        };
        assert_eq!(with(0).validate().unwrap(), DEFAULT_PIPELINE_PAGE_SIZE);
        assert_eq!(with(MAX_PIPELINE_PAGE_SIZE).validate().unwrap(), 1_000);
        assert!(with(-1).validate().is_err());
        assert!(with(MAX_PIPELINE_PAGE_SIZE + 1).validate().is_err());
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
