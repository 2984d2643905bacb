//! `mark_completed` and `mark_failed` coalesced on PostgreSQL: the calls
//! made concurrently on one handle run as one statement over arrays
//! ([`crate::sql::POSTGRES_FINISH_MANY_SQL`]), each with its own guard and
//! its own event, and each caller gets its own answer. A call that did not
//! apply in the batch (fenced, refused, unknown task), and every call of a
//! batch whose statement failed, runs again alone through its single-task
//! transition, which answers as an uncoalesced call would: no call's
//! refusal or error reaches another. A lone call runs alone at once.
//!
//! SQLite does not come here: its writes are coalesced by its group commit.

use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Text};
use te_core::sql_types::{DbUuid, UtcTimestamp};
use te_core::toolkit::coalesce::{Call, Queued, answer_alone, distinct_by};
use te_core::toolkit::{coalesce, new_id, now, run_coalesced, statement};
use te_core::{AnyConnection, DalError, TaskExecutionDal};
use uuid::Uuid;

use crate::sql::POSTGRES_FINISH_MANY_SQL;
use crate::transitions;

/// One waiting `mark_completed` (no `error`) or `mark_failed`.
pub(crate) struct Finish {
    task_id: Uuid,
    runner: Option<Uuid>,
    error: Option<String>,
}

/// Runs `mark_completed` (`error` `None`) or `mark_failed` of `task_id`
/// through `dal`'s queue of completions.
pub(crate) async fn finish(
    dal: &TaskExecutionDal,
    task_id: Uuid,
    runner: Option<Uuid>,
    error: Option<String>,
) -> Result<bool, DalError> {
    let call = Finish {
        task_id,
        runner,
        error,
    };
    coalesce(dal, call).await
}

impl Call for Finish {
    type Answer = bool;

    /// Enough for every worker of a busy process; the statement's arrays
    /// stay small.
    const MAX_BATCH: usize = 256;

    /// One call per task in a batch.
    fn fits(batch: &[Queued<Self>], next: &Self) -> bool {
        distinct_by(batch, next, |call| call.task_id)
    }

    async fn run(dal: TaskExecutionDal, batch: Vec<Queued<Self>>) {
        run_coalesced(&dal, batch, finish_batch).await;
    }
}

impl Finish {
    /// Runs the call alone, as an uncoalesced call does.
    fn alone(&self, conn: &mut AnyConnection) -> Result<bool, DalError> {
        match &self.error {
            None => transitions::mark_completed(conn, self.task_id, self.runner),
            Some(error) => transitions::mark_failed(conn, self.task_id, error, self.runner),
        }
    }
}

/// The `n` (from 1) of a call that applied.
#[derive(QueryableByName)]
struct Applied {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Runs `batch` on `conn` and answers every call; `Err` when the
/// connection was lost (it is closed then).
fn finish_batch(conn: &mut AnyConnection, batch: Vec<Queued<Finish>>) -> Result<(), DalError> {
    let applied = match (&mut *conn, batch.len()) {
        (AnyConnection::Postgres(pg), 2..) => finish_many(pg, &batch).ok(),
        _ => None,
    };
    let mut rest = Vec::with_capacity(batch.len());
    for (i, queued) in batch.into_iter().enumerate() {
        if applied.as_ref().is_some_and(|applied| applied[i]) {
            queued.reply.send(Ok(true));
        } else {
            rest.push(queued);
        }
    }
    answer_alone(rest, |call| call.alone(conn))
}

/// The batch statement: for each call, whether it applied.
fn finish_many(pg: &mut diesel::PgConnection, batch: &[Queued<Finish>]) -> QueryResult<Vec<bool>> {
    let batch: Vec<&Finish> = batch.iter().map(|queued| &queued.call).collect();
    let column = |f: &dyn Fn(&Finish) -> Uuid| batch.iter().copied().map(f).collect::<Vec<Uuid>>();
    let rows = statement(POSTGRES_FINISH_MANY_SQL)
        .bind::<UtcTimestamp, _>(now())
        .bind::<Array<DbUuid>, _>(column(&|c| c.task_id))
        .bind::<Array<DbUuid>, _>(column(&|c| c.runner.unwrap_or(Uuid::nil())))
        .bind::<Array<Bool>, _>(batch.iter().map(|c| c.error.is_some()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            batch
                .iter()
                .map(|c| c.error.as_deref().unwrap_or(""))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<DbUuid>, _>(column(&|_| new_id()))
        .load::<Applied>(pg)?;
    let mut applied = vec![false; batch.len()];
    for row in rows {
        if let Some(slot) = usize::try_from(row.n - 1)
            .ok()
            .and_then(|i| applied.get_mut(i))
        {
            *slot = true;
        }
    }
    Ok(applied)
}
