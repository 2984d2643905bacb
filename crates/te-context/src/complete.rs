//! `complete_with_context` and `complete_and_promote` coalesced on
//! PostgreSQL: the calls made concurrently on one handle run in ONE
//! transaction, each inside its own savepoint, and commit together (one
//! commit, one WAL flush, for all of them). Each caller gets its own answer
//! once the transaction has committed: a call that fails is rolled back to
//! its savepoint alone and answered with its own error, and a fenced call
//! (`None`) writes nothing. When the transaction as a whole cannot commit,
//! every call of it runs again alone, in a transaction of its own. A lone
//! call runs alone at once.
//!
//! A completion with its output context is several statements (the
//! completion, the context, its metadata, the promotion of dependents), so
//! its calls share a transaction rather than one statement. SQLite does not
//! come here: its writes share transactions through its group commit.

use diesel::Connection;
use serde_json::Value;
use te_core::toolkit::coalesce::{Call, Queued, answer_alone, distinct_by};
use te_core::toolkit::{coalesce, promote, run_coalesced, write_transaction};
use te_core::{AnyConnection, DalError, TaskExecutionDal};
use uuid::Uuid;

use crate::queries;

/// Completes `task_id` (guarded by `runner`), saves `context` as its output
/// and makes `dependents` (distinct) of its own pipeline `Ready`, in the
/// caller's write transaction: `Some(promoted)`, or `None` with nothing
/// written when the runner does not hold the claim.
pub(crate) fn complete_and_promote(
    conn: &mut AnyConnection,
    task_id: Uuid,
    runner: Option<Uuid>,
    context: &Value,
    dependents: &[Uuid],
) -> Result<Option<usize>, DalError> {
    let Some(pipeline_id) = queries::complete_with_context(conn, task_id, runner, context)? else {
        return Ok(None);
    };
    if dependents.is_empty() {
        return Ok(Some(0));
    }
    // Only the completed task's own pipeline, and not when it was
    // cancelled: one condition more in the promotion's `WHERE`.
    promote(conn, dependents, Some(pipeline_id)).map(Some)
}

/// One waiting `complete_and_promote` (PostgreSQL).
pub(crate) struct Complete {
    task_id: Uuid,
    runner: Option<Uuid>,
    context: Value,
    dependents: Vec<Uuid>,
}

/// Runs `complete_and_promote` through `dal`'s queue of completions with
/// context (PostgreSQL).
pub(crate) async fn coalesced(
    dal: &TaskExecutionDal,
    task_id: Uuid,
    runner: Option<Uuid>,
    context: Value,
    dependents: Vec<Uuid>,
) -> Result<Option<usize>, DalError> {
    let call = Complete {
        task_id,
        runner,
        context,
        dependents,
    };
    coalesce(dal, call).await
}

impl Complete {
    fn apply(&self, conn: &mut AnyConnection) -> Result<Option<usize>, DalError> {
        complete_and_promote(
            conn,
            self.task_id,
            self.runner,
            &self.context,
            &self.dependents,
        )
    }
}

impl Call for Complete {
    type Answer = Option<usize>;

    /// Enough for every worker of a busy process, few enough that the
    /// transaction's row locks are held briefly.
    const MAX_BATCH: usize = 64;

    /// One call per task in a transaction.
    fn fits(batch: &[Queued<Self>], next: &Self) -> bool {
        distinct_by(batch, next, |call| call.task_id)
    }

    async fn run(dal: TaskExecutionDal, batch: Vec<Queued<Self>>) {
        run_coalesced(&dal, batch, complete_batch).await;
    }
}

/// Runs `batch` on `conn` and answers every call; `Err` when the
/// connection was lost.
fn complete_batch(conn: &mut AnyConnection, batch: Vec<Queued<Complete>>) -> Result<(), DalError> {
    if batch.len() > 1 {
        let mut results = Vec::with_capacity(batch.len());
        let together = conn.transaction(|conn| {
            for queued in &batch {
                // A nested transaction is a savepoint: an error rolls back
                // this call alone.
                results.push(conn.transaction(|conn| queued.call.apply(conn)));
            }
            Ok::<_, DalError>(())
        });
        if together.is_ok() {
            for (queued, result) in batch.into_iter().zip(results) {
                queued.reply.send(result);
            }
            return Ok(());
        }
    }
    // Alone, or the shared transaction did not commit: each call in a
    // transaction of its own.
    answer_alone(batch, |call| {
        write_transaction(conn, |conn| call.apply(conn))
    })
}
