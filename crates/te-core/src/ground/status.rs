//! Status enums and event types, stored as their variant names.

use std::fmt;
use std::str::FromStr;

use diesel::sql_types::Text;

/// A stored status or event name that no variant matches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {type_name}")]
pub struct ParseEnumError {
    /// The enum that was parsed into.
    pub type_name: &'static str,
    /// The text that was rejected.
    pub value: String,
}

/// Declares an enum stored as the text of its variant names, with `as_str`,
/// `Display`, `FromStr` and serde; its diesel `Text` conversions are in the
/// data floor's `sql_types`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The variant's name, exactly as stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant)),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $(stringify!($variant) => Ok($name::$variant),)+
                    other => Err(ParseEnumError {
                        type_name: stringify!($name),
                        value: other.to_owned(),
                    }),
                }
            }
        }
    };
}

text_enum! {
    /// Where a task execution is in its life.
    TaskStatus {
        /// Created; its dependencies have not all finished.
        NotStarted,
        /// May be claimed by a worker (once `retry_at` has passed).
        Ready,
        /// Claimed by a worker.
        Running,
        /// Finished successfully.
        Completed,
        /// Finished unsuccessfully (possibly to be retried).
        Failed,
        /// Will not run.
        Skipped,
    }
}

impl TaskStatus {
    /// True for `Completed`, `Failed` and `Skipped`: the task will not run again
    /// unless it is explicitly retried or reset.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Skipped
        )
    }
}

text_enum! {
    /// Refines `TaskStatus::Running`.
    SubStatus {
        /// Executing.
        Active,
        /// Waiting on something outside the worker (e.g. an external callback).
        Deferred,
    }
}

text_enum! {
    /// Where a pipeline execution is in its life.
    PipelineStatus {
        /// Created, not yet started.
        Pending,
        /// Started.
        Running,
        /// Every task finished and the pipeline succeeded.
        Completed,
        /// The pipeline failed.
        Failed,
        /// The pipeline was cancelled.
        Cancelled,
    }
}

impl PipelineStatus {
    /// True for `Completed`, `Failed` and `Cancelled`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PipelineStatus::Completed | PipelineStatus::Failed | PipelineStatus::Cancelled
        )
    }
}

text_enum! {
    /// What an audit event records.
    EventType {
        /// A pipeline execution was created.
        PipelineCreated,
        /// A pipeline execution's status changed.
        PipelineStatusChanged,
        /// A task execution was created.
        TaskCreated,
        /// A task's configuration was updated.
        TaskUpdated,
        /// A task became `Ready`.
        TaskReady,
        /// A task started `Running` outside of a claim.
        TaskStarted,
        /// A task was claimed and moved to `Running`.
        TaskClaimed,
        /// A task completed.
        TaskCompleted,
        /// A task failed.
        TaskFailed,
        /// A task was skipped.
        TaskSkipped,
        /// A task was abandoned (failed for good by recovery).
        TaskAbandoned,
        /// A task's sub-status changed.
        SubStatusChanged,
        /// A retry was scheduled.
        RetryScheduled,
        /// A task's retry state was reset.
        RetryStateReset,
        /// A task was reset after its runner was lost.
        RecoveryReset,
        /// A runner took a claim on a task.
        RunnerClaimed,
        /// A runner's claim was released.
        ClaimReleased,
        /// A task's output context was saved.
        ContextSaved,
        /// A pipeline execution was paused: none of its tasks is claimed.
        PipelinePaused,
        /// A paused pipeline execution was resumed.
        PipelineResumed,
        /// A pipeline execution's final context was stored.
        PipelineFinalContextSet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), *status);
        }
        assert!("Done".parse::<TaskStatus>().is_err());
    }

    #[test]
    fn terminal_statuses() {
        let terminal: Vec<_> = TaskStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .copied()
            .collect();
        assert_eq!(
            terminal,
            vec![
                TaskStatus::Completed,
                TaskStatus::Failed,
                TaskStatus::Skipped
            ]
        );
    }
}
