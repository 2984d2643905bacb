//! Guarded writes of task rows: the compare-and-set `UPDATE` whose `WHERE`
//! names the statuses a change may start from (and the runner that must hold
//! the claim), the audit event written with it, and why a write that matched
//! no row was refused.
//!
//! Every transition of te-state and every runner operation of te-claiming is
//! one [`Transition`]: fencing lives in the `WHERE` clause, never in a read
//! followed by a write.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::{Bool, Nullable, Text};
use serde_json::Value;
use uuid::Uuid;

use diesel::backend::Backend;
use diesel::query_builder::AstPass;
use diesel::serialize::ToSql;
use diesel::sql_types::HasSqlType;

use crate::data::any_connection::{AnyConnection, MultiBackend};
use crate::data::models::NewEvent;
use crate::data::schema::{pipeline_executions, task_executions};
use crate::data::sql_types::{DbJson, DbUuid, UtcTimestamp};
use crate::ground::error::{DalError, PipelineOperation};
use crate::ground::status::{EventType, PipelineStatus, SubStatus, TaskStatus};
use crate::toolkit::batch::MAX_IN_LIST;
use crate::toolkit::bind;
use crate::toolkit::rows::record_event;

/// What a guarded write did when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// The row matched the guard and was changed; the event was recorded.
    Applied {
        /// The pipeline execution of the changed task.
        pipeline_id: Uuid,
    },
    /// The runner named by the guard does not hold the task's claim: nothing
    /// was written. Runner-guarded operations report this as `false` (or as
    /// `ClaimLost` / `AlreadyClaimed`), whatever the task's status is now.
    Fenced,
}

impl Outcome {
    /// True for [`Outcome::Applied`].
    pub fn applied(self) -> bool {
        matches!(self, Outcome::Applied { .. })
    }
}

/// Who must hold the task's runner claim for a write to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Anyone or no one: the claim is not checked.
    Any,
    /// Exactly this runner; with `None`, not checked (an unguarded call).
    Runner(Option<Uuid>),
    /// No runner, or this one (taking a claim).
    FreeOr(Uuid),
}

impl Holder {
    /// Whether a task held by `holder` passes this guard.
    fn admits(self, holder: Option<Uuid>) -> bool {
        match self {
            Holder::Any | Holder::Runner(None) => true,
            Holder::Runner(Some(runner)) => holder == Some(runner),
            Holder::FreeOr(runner) => holder.is_none() || holder == Some(runner),
        }
    }

    /// The runner to name in the event.
    fn runner(self) -> Option<Uuid> {
        match self {
            Holder::Any => None,
            Holder::Runner(runner) => runner,
            Holder::FreeOr(runner) => Some(runner),
        }
    }
}

/// What a guarded write requires of the task's pipeline execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineGuard {
    /// Nothing.
    Any,
    /// It is not `Cancelled`: a write that makes a task `Ready` (a
    /// cancelled pipeline never gets work again).
    NotCancelled,
    /// It is this pipeline execution and not `Cancelled`: the promotion of
    /// a completed task's dependents.
    NotCancelledIn(Uuid),
    /// A `Ready` task's pipeline is not held (paused or cancelled, see the
    /// `held_pipelines` table): a runner claim, which must not take a task
    /// that no claim would hand out. A `Running` task passes.
    ReadyNotHeld,
}

/// `NOT EXISTS` a cancelled pipeline of the task being written: constant
/// text, no value in it.
const NOT_IN_CANCELLED_PIPELINE: &str = "NOT EXISTS (SELECT 1 FROM pipeline_executions AS p \
     WHERE p.id = task_executions.pipeline_execution_id AND p.status = 'Cancelled')";

/// A `Ready` task whose pipeline is held is left out: constant text.
const READY_NOT_HELD: &str = "(task_executions.status <> 'Ready' OR NOT EXISTS \
     (SELECT 1 FROM held_pipelines AS h WHERE h.pipeline_id = task_executions.pipeline_execution_id))";

/// The `WHERE` clause of a guarded write, boxed for backend `$db`: the
/// task ids (`$ids`, an expression on `task_executions::id`), the statuses it
/// may start from, the holder guard, an optional lower bound on
/// `max_attempts` and the [`PipelineGuard`]; every value bound.
macro_rules! condition {
    ($db:ty, $ids:expr, $from:expr, $holder:expr, $max_attempts_at_least:expr, $guard:expr) => {{
        // `status = $a OR status = $b …`, not `eq_any`: on SQLite an `IN`
        // list keeps a statement out of diesel's prepared-statement cache.
        let mut statuses: Option<
            Box<dyn BoxableExpression<task_executions::table, $db, SqlType = Bool>>,
        > = None;
        for status in $from.iter().copied() {
            let this = task_executions::status.eq(status);
            statuses = Some(match statuses {
                None => Box::new(this),
                Some(before) => Box::new(before.or(this)),
            });
        }
        let mut condition: Box<dyn BoxableExpression<task_executions::table, $db, SqlType = Bool>> =
            match statuses {
                Some(statuses) => Box::new($ids.and(statuses)),
                // No status to start from: nothing matches.
                None => Box::new($ids.and(diesel::dsl::sql::<Bool>("FALSE"))),
            };
        match $holder {
            Holder::Any | Holder::Runner(None) => {}
            Holder::Runner(Some(runner)) => {
                condition = Box::new(condition.and(claimed_by_is(runner)));
            }
            Holder::FreeOr(runner) => {
                condition = Box::new(
                    condition.and(
                        task_executions::claimed_by
                            .is_null()
                            .or(claimed_by_is(runner)),
                    ),
                );
            }
        }
        if let Some(attempt) = $max_attempts_at_least {
            condition = Box::new(condition.and(task_executions::max_attempts.ge(attempt)));
        }
        match $guard {
            PipelineGuard::Any => {}
            PipelineGuard::NotCancelled => {
                condition =
                    Box::new(condition.and(diesel::dsl::sql::<Bool>(NOT_IN_CANCELLED_PIPELINE)));
            }
            PipelineGuard::NotCancelledIn(pipeline_id) => {
                condition = Box::new(
                    condition
                        .and(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
                        .and(diesel::dsl::sql::<Bool>(NOT_IN_CANCELLED_PIPELINE)),
                );
            }
            PipelineGuard::ReadyNotHeld => {
                condition = Box::new(condition.and(diesel::dsl::sql::<Bool>(READY_NOT_HELD)));
            }
        }
        condition
    }};
}

/// `claimed_by = runner` (false, not NULL, for an unclaimed task).
fn claimed_by_is(
    runner: Uuid,
) -> diesel::dsl::Eq<diesel::dsl::AssumeNotNull<task_executions::claimed_by>, bind::IdParam> {
    task_executions::claimed_by
        .assume_not_null()
        .eq(bind::id(runner))
}

/// A changeset with the status and `updated_at` a transition sets.
type WithStatus<C> = (
    Option<diesel::dsl::Eq<task_executions::status, TaskStatus>>,
    Option<diesel::dsl::Eq<task_executions::updated_at, bind::TsParam>>,
    C,
);

/// One guarded write of one task: where it may start, what it sets, who must
/// hold the claim, and the audit event that records it.
///
/// ```text
/// Transition::new(task_id, &[Running], Some(Completed))
///     .holder(Holder::Runner(runner_id))
///     .event(EventType::TaskCompleted)
///     .apply(conn, now, finished(now))?
/// ```
#[derive(Debug, Clone)]
pub struct Transition {
    task_id: Uuid,
    from: &'static [TaskStatus],
    to: Option<TaskStatus>,
    holder: Holder,
    event: Option<EventType>,
    data: Option<Value>,
    touch: bool,
    max_attempts_at_least: Option<i32>,
    pipeline_guard: PipelineGuard,
}

impl Transition {
    /// A write of `task_id` allowed from `from`, setting the status to `to`
    /// (`None`: the status stays), bumping `updated_at`, with no claim guard
    /// and no event until [`Transition::event`] names one.
    pub fn new(task_id: Uuid, from: &'static [TaskStatus], to: Option<TaskStatus>) -> Self {
        Transition {
            task_id,
            from,
            to,
            holder: Holder::Any,
            event: None,
            data: None,
            touch: true,
            max_attempts_at_least: None,
            pipeline_guard: PipelineGuard::Any,
        }
    }

    /// Also requires what `guard` says of the task's pipeline execution, in
    /// the same `WHERE` clause. A task refused by it: for
    /// [`PipelineGuard::NotCancelled`] (and `NotCancelledIn`, of its own
    /// pipeline) [`DalError::IllegalPipelineTransition`] from `Cancelled`;
    /// for [`PipelineGuard::ReadyNotHeld`] [`Outcome::Fenced`] (the task is
    /// not the runner's to take); for another pipeline than the one named
    /// [`Outcome::Fenced`] too.
    pub fn pipeline_guard(mut self, guard: PipelineGuard) -> Self {
        self.pipeline_guard = guard;
        self
    }

    /// Requires the claim to be held as `holder` says; the event names its runner.
    pub fn holder(mut self, holder: Holder) -> Self {
        self.holder = holder;
        self
    }

    /// Records an event of `event_type` when the write applies.
    pub fn event(mut self, event_type: EventType) -> Self {
        self.event = Some(event_type);
        self
    }

    /// Attaches details to the event.
    pub fn data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Leaves `updated_at` alone (a heartbeat is not a change of the task).
    pub fn untouched(mut self) -> Self {
        self.touch = false;
        self
    }

    /// Also requires `max_attempts >= attempt`; a task that allows fewer is
    /// refused with [`DalError::InvalidInput`] naming `new_attempt`.
    pub fn max_attempts_at_least(mut self, attempt: i32) -> Self {
        self.max_attempts_at_least = Some(attempt);
        self
    }

    /// Applies `changes` (with the status, and `updated_at = now` unless
    /// [`Transition::untouched`]) if the task is in one of `from`, passes the
    /// holder guard and any other requirement, and records the event: one
    /// compare-and-set `UPDATE … RETURNING`, then the event's `INSERT`. Call
    /// it inside a write transaction so that both commit together.
    ///
    /// When no row matched, the task is read to say why: [`Outcome::Fenced`]
    /// when a named runner does not hold the claim (whatever the status),
    /// else [`DalError::NotFound`], [`DalError::IllegalTransition`] or
    /// [`DalError::InvalidInput`]; nothing is written in any of these cases.
    pub fn apply<C>(
        &self,
        conn: &mut AnyConnection,
        now: DateTime<Utc>,
        changes: C,
    ) -> Result<Outcome, DalError>
    where
        C: AsChangeset<Target = task_executions::table> + Clone,
        C::Changeset: QueryFragment<MultiBackend>,
    {
        // On PostgreSQL another transaction may change the row between the
        // update and the read that explains a miss; the update is then
        // simply tried again against the row as it is now.
        for _ in 0..3 {
            if let Some(pipeline_id) = self.apply_if_allowed(conn, now, changes.clone())? {
                return Ok(Outcome::Applied { pipeline_id });
            }
            if let Some(refusal) = self.refusal(conn)? {
                return refusal;
            }
        }
        Err(DalError::Contended {
            task_id: self.task_id,
        })
    }

    /// The status, `updated_at` and `changes`, as one changeset.
    fn changeset<C>(&self, now: DateTime<Utc>, changes: C) -> WithStatus<C> {
        (
            self.to.map(|to| task_executions::status.eq(to)),
            self.touch
                .then(|| task_executions::updated_at.eq(bind::ts(now))),
            changes,
        )
    }

    /// The event this write records, once its pipeline is known.
    fn new_event(&self, pipeline_id: Uuid, now: DateTime<Utc>) -> Option<NewEvent> {
        let event_type = self.event?;
        let mut event =
            NewEvent::task(pipeline_id, self.task_id, event_type, now).runner(self.holder.runner());
        event.event_data = self.data.clone();
        Some(event)
    }

    /// Applies the write as [`Transition::apply`] does when the task passes
    /// every guard and returns its pipeline; otherwise writes nothing and
    /// returns `None`, without reading why (for batch operations, which
    /// count what they changed): the compare-and-set `UPDATE … RETURNING`
    /// and the event's `INSERT`.
    ///
    /// On PostgreSQL they are ONE statement (a data-modifying CTE): atomic on
    /// its own, so that a transition costs one round trip and one commit,
    /// with or without a surrounding transaction, and whose text depends
    /// only on the transition's shape, so that each connection prepares it
    /// once (a `GuardedUpdate`). On SQLite they are two statements, inside
    /// the caller's write transaction.
    pub fn apply_if_allowed<C>(
        &self,
        conn: &mut AnyConnection,
        now: DateTime<Utc>,
        changes: C,
    ) -> Result<Option<Uuid>, DalError>
    where
        C: AsChangeset<Target = task_executions::table>,
        C::Changeset: QueryFragment<MultiBackend>,
    {
        // PostgreSQL writes the event in the update's own statement; SQLite,
        // which has no data-modifying CTE, with its own insert below.
        let in_statement = matches!(conn, AnyConnection::Postgres(_));
        let updated = GuardedUpdate {
            changeset: self.changeset(now, changes).as_changeset(),
            condition: condition!(
                MultiBackend,
                task_executions::id.eq(bind::id(self.task_id)),
                self.from,
                self.holder,
                self.max_attempts_at_least,
                self.pipeline_guard
            ),
            event: self.new_event(Uuid::nil(), now).filter(|_| in_statement),
            returning: std::marker::PhantomData::<PipelineOf>,
        }
        .get_result::<Uuid>(conn)
        .optional()?;
        if in_statement {
            return Ok(updated);
        }
        if let Some(pipeline_id) = updated
            && let Some(event) = self.new_event(pipeline_id, now)
        {
            record_event(conn, event)?;
        }
        Ok(updated)
    }

    /// Why the update matched no row, read from the task as it is now;
    /// `None` when the task now passes every guard (it changed meanwhile).
    fn refusal(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<Option<Result<Outcome, DalError>>, DalError> {
        let current = task_executions::table
            .find(bind::id(self.task_id))
            .select((
                task_executions::status,
                task_executions::claimed_by,
                task_executions::max_attempts,
                task_executions::pipeline_execution_id,
            ))
            .first::<(TaskStatus, Option<Uuid>, i32, Uuid)>(conn)
            .optional()?;
        let Some((status, holder, max_attempts, pipeline_id)) = current else {
            return Ok(Some(Err(DalError::task_not_found(self.task_id))));
        };
        if !self.holder.admits(holder) {
            return Ok(Some(Ok(Outcome::Fenced)));
        }
        if !self.from.contains(&status) {
            return Ok(Some(Err(DalError::IllegalTransition {
                task_id: self.task_id,
                from: status,
                to: self.to.unwrap_or(status),
            })));
        }
        if let Some(attempt) = self.max_attempts_at_least
            && max_attempts < attempt
        {
            return Ok(Some(Err(DalError::invalid(
                "new_attempt",
                format!("must be at most max_attempts ({max_attempts}), got {attempt}"),
            ))));
        }
        self.pipeline_refusal(conn, status, pipeline_id)
    }

    /// Why the [`PipelineGuard`] refused a task that passes every other
    /// guard; `None` when it does not refuse it (now).
    fn pipeline_refusal(
        &self,
        conn: &mut AnyConnection,
        status: TaskStatus,
        pipeline_id: Uuid,
    ) -> Result<Option<Result<Outcome, DalError>>, DalError> {
        let wanted = match self.pipeline_guard {
            PipelineGuard::Any => return Ok(None),
            PipelineGuard::NotCancelledIn(wanted) if wanted != pipeline_id => {
                return Ok(Some(Ok(Outcome::Fenced)));
            }
            PipelineGuard::ReadyNotHeld if status != TaskStatus::Ready => return Ok(None),
            guard => guard,
        };
        let (pipeline_status, paused) = pipeline_executions::table
            .find(bind::id(pipeline_id))
            .select((pipeline_executions::status, pipeline_executions::paused))
            .first::<(PipelineStatus, bool)>(conn)?;
        let cancelled = pipeline_status == PipelineStatus::Cancelled;
        Ok(match wanted {
            PipelineGuard::ReadyNotHeld if cancelled || paused => Some(Ok(Outcome::Fenced)),
            PipelineGuard::NotCancelled | PipelineGuard::NotCancelledIn(_) if cancelled => {
                Some(Err(DalError::IllegalPipelineTransition {
                    pipeline_id,
                    from: PipelineStatus::Cancelled,
                    to: PipelineStatus::Running,
                    operation: PipelineOperation::ReadyTask,
                }))
            }
            _ => None,
        })
    }
}

/// `Running` → `Completed` of `task_id`, guarded by `runner` when given,
/// recorded as `TaskCompleted`: the completion shared by `mark_completed`
/// and `complete_with_context`. Apply it with [`finished`] as its changes.
pub fn completion(task_id: Uuid, runner: Option<Uuid>) -> Transition {
    Transition::new(task_id, &[TaskStatus::Running], Some(TaskStatus::Completed))
        .holder(Holder::Runner(runner))
        .event(EventType::TaskCompleted)
}

/// The statuses a task is made `Ready` from by `mark_ready` and its batch
/// forms: waiting for its dependencies, or already `Ready`.
pub const READY_FROM: &[TaskStatus] = &[TaskStatus::NotStarted, TaskStatus::Ready];

/// `ids` sorted, each once: the rows a batch transition locks, in one order
/// whoever calls.
pub fn distinct(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// True when a batch transition of `task_ids` is one statement on
/// PostgreSQL (a single task), so that it can run without a surrounding
/// transaction.
pub fn is_one_statement(task_ids: &[Uuid]) -> bool {
    task_ids.len() == 1
}

/// Moves each of `task_ids` that is in one of `from` (and held by
/// `runner_id`, when given) to `to`, setting `changes(now)`
/// ([`compare_and_set`]), and records an `event_type` event naming
/// `runner_id` for each task changed, in id order; returns how many changed.
/// Call inside a write transaction, with `task_ids` [`distinct`].
///
/// A single task goes through the single-task transition instead, the same
/// guard and event as one statement on PostgreSQL (see
/// [`is_one_statement`]).
pub fn transition_many<C>(
    conn: &mut AnyConnection,
    task_ids: &[Uuid],
    from: &'static [TaskStatus],
    to: TaskStatus,
    runner_id: Option<Uuid>,
    event_type: EventType,
    changes: impl FnOnce(DateTime<Utc>) -> C,
) -> Result<usize, DalError>
where
    C: AsChangeset<Target = task_executions::table> + Clone,
    C::Changeset: QueryFragment<MultiBackend>,
{
    let batch = Batch {
        from,
        to,
        runner: runner_id,
        guard: PipelineGuard::Any,
    };
    transition_batch(conn, task_ids, batch, event_type, changes)
}

/// What a batch transition requires and sets: the statuses it may start
/// from, the status it sets, the runner that must hold each claim (when
/// `Some`) and what each task's pipeline must be.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// The statuses a task may start from.
    pub from: &'static [TaskStatus],
    /// The status it sets.
    pub to: TaskStatus,
    /// The runner that must hold each task's claim, when `Some`.
    pub runner: Option<Uuid>,
    /// What each task's pipeline execution must be.
    pub guard: PipelineGuard,
}

/// [`transition_many`] with a [`Batch`]'s pipeline guard as well.
pub fn transition_batch<C>(
    conn: &mut AnyConnection,
    task_ids: &[Uuid],
    batch: Batch,
    event_type: EventType,
    changes: impl FnOnce(DateTime<Utc>) -> C,
) -> Result<usize, DalError>
where
    C: AsChangeset<Target = task_executions::table> + Clone,
    C::Changeset: QueryFragment<MultiBackend>,
{
    let now = crate::toolkit::now();
    let runner_id = batch.runner;
    if is_one_statement(task_ids) {
        let changed = Transition::new(task_ids[0], batch.from, Some(batch.to))
            .holder(Holder::Runner(runner_id))
            .pipeline_guard(batch.guard)
            .event(event_type)
            .apply_if_allowed(conn, now, changes(now))?;
        return Ok(usize::from(changed.is_some()));
    }
    let mut changed = compare_and_set(conn, task_ids, batch, now, changes(now))?;
    changed.sort_unstable();
    let events: Vec<NewEvent> = changed
        .iter()
        .map(|&(task_id, pipeline_id)| {
            NewEvent::task(pipeline_id, task_id, event_type, now).runner(runner_id)
        })
        .collect();
    crate::toolkit::rows::record_events(conn, &events)?;
    Ok(changed.len())
}

/// Makes each of `task_ids` (distinct) that is `NotStarted` or `Ready`
/// `Ready`, clearing its sub-status, with one `TaskReady` event each; the
/// others are left alone, and so is every task of a cancelled pipeline
/// execution (and, with `within`, of any pipeline but that one): the
/// condition is part of the `UPDATE`'s `WHERE` clause. Returns how many
/// changed: the promotion shared by `mark_ready_many` and
/// `complete_and_promote`. Call inside a write transaction.
pub fn promote(
    conn: &mut AnyConnection,
    task_ids: &[Uuid],
    within: Option<Uuid>,
) -> Result<usize, DalError> {
    let changes = |_| task_executions::sub_status.eq(None::<SubStatus>);
    let batch = Batch {
        from: READY_FROM,
        to: TaskStatus::Ready,
        runner: None,
        guard: within.map_or(PipelineGuard::NotCancelled, PipelineGuard::NotCancelledIn),
    };
    transition_batch(conn, task_ids, batch, EventType::TaskReady, changes)
}

/// Compare-and-set of many tasks: moves each of `task_ids` whose status is
/// one of `batch.from` (and, when `batch.runner` is `Some`, whose
/// `claimed_by` is that runner, and whose pipeline passes `batch.guard`) to
/// status `batch.to`, with `updated_at = now` and `changes`; returns
/// `(id, pipeline_execution_id)` of every row changed. One `UPDATE …
/// RETURNING` per [`MAX_IN_LIST`] ids. Call inside a write transaction, with
/// the changes' audit events.
pub fn compare_and_set<C>(
    conn: &mut AnyConnection,
    task_ids: &[Uuid],
    batch: Batch,
    now: DateTime<Utc>,
    changes: C,
) -> Result<Vec<(Uuid, Uuid)>, DalError>
where
    C: AsChangeset<Target = task_executions::table> + Clone,
    C::Changeset: QueryFragment<MultiBackend>,
{
    let mut changed = Vec::new();
    for chunk in task_ids.chunks(MAX_IN_LIST) {
        let rows = GuardedUpdate::<_, _, IdAndPipeline> {
            changeset: (
                task_executions::status.eq(batch.to),
                task_executions::updated_at.eq(bind::ts(now)),
                changes.clone(),
            )
                .as_changeset(),
            condition: condition!(
                MultiBackend,
                task_executions::id.eq_any(bind::ids(chunk)),
                batch.from,
                Holder::Runner(batch.runner),
                None::<i32>,
                batch.guard
            ),
            event: None,
            returning: std::marker::PhantomData,
        }
        .get_results::<(Uuid, Uuid)>(conn)?;
        changed.extend(rows);
    }
    Ok(changed)
}

/// What [`unclaimed`] sets, as a named type: a plain tuple of assignments,
/// which diesel lets an `UPDATE … WHERE` carry.
pub type Unclaimed = (
    diesel::dsl::Eq<task_executions::sub_status, Option<SubStatus>>,
    diesel::dsl::Eq<task_executions::claimed_by, bind::OptIdParam>,
    diesel::dsl::Eq<task_executions::heartbeat_at, bind::OptTsParam>,
);

/// What [`finished`] sets, as a named type (see [`Unclaimed`]).
pub type Finished = (
    diesel::dsl::Eq<task_executions::completed_at, bind::OptTsParam>,
    Unclaimed,
);

/// The changeset that clears a task's runner claim and its sub-status: what
/// leaving `Running` (or losing the runner) sets.
pub fn unclaimed() -> Unclaimed {
    (
        task_executions::sub_status.eq(None::<SubStatus>),
        task_executions::claimed_by.eq(bind::opt_id(None)),
        task_executions::heartbeat_at.eq(bind::opt_ts(None)),
    )
}

/// What every terminal status sets: `completed_at = now`, and no claim.
pub fn finished(now: DateTime<Utc>) -> Finished {
    (
        task_executions::completed_at.eq(bind::opt_ts(Some(now))),
        unclaimed(),
    )
}

/// `UPDATE task_executions SET … WHERE … RETURNING pipeline_execution_id`,
/// and with an event `WITH changed AS (<that update>), logged AS (INSERT
/// INTO execution_events … SELECT … FROM changed) SELECT
/// pipeline_execution_id FROM changed`: a guarded update and its audit event
/// as one PostgreSQL statement. The event is written only when the update
/// changed the row; its pipeline comes from the updated row.
///
/// The `UPDATE` is written here rather than by diesel's `update()`, which
/// keeps every `UPDATE` out of the prepared-statement cache: this text is
/// fixed by the transition's shape (which columns it sets, which guards it
/// has), one of a small set, and every value in it is bound, so diesel
/// caches it by its text and a transition is parsed and planned once per
/// connection.
struct GuardedUpdate<S, DB, R = PipelineOf> {
    changeset: S,
    condition: Box<dyn BoxableExpression<task_executions::table, DB, SqlType = Bool>>,
    /// Written in the same statement (PostgreSQL only: SQLite has no
    /// data-modifying CTE, and records the event with its own `INSERT`).
    event: Option<NewEvent>,
    /// What each changed row returns.
    returning: std::marker::PhantomData<R>,
}

/// The `RETURNING` list of a [`GuardedUpdate`] and its SQL type.
trait Returning {
    /// The columns, unqualified (the `changed` CTE names them so too).
    const COLUMNS: &'static str;
    /// The SQL type of one returned row.
    type SqlType;
}

/// A single-task transition returns the task's pipeline.
struct PipelineOf;

impl Returning for PipelineOf {
    const COLUMNS: &'static str = "pipeline_execution_id";
    type SqlType = DbUuid;
}

/// A batch compare-and-set returns each changed task and its pipeline.
struct IdAndPipeline;

impl Returning for IdAndPipeline {
    const COLUMNS: &'static str = "id, pipeline_execution_id";
    type SqlType = (DbUuid, DbUuid);
}

impl<S, DB, R: Returning> QueryFragment<DB> for GuardedUpdate<S, DB, R>
where
    DB: Backend
        + HasSqlType<DbUuid>
        + HasSqlType<Text>
        + HasSqlType<DbJson>
        + HasSqlType<UtcTimestamp>,
    S: QueryFragment<DB>,
    Uuid: ToSql<DbUuid, DB>,
    Option<Uuid>: ToSql<Nullable<DbUuid>, DB>,
    EventType: ToSql<Text, DB>,
    Option<Value>: ToSql<Nullable<DbJson>, DB>,
    DateTime<Utc>: ToSql<UtcTimestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if self.event.is_some() {
            out.push_sql("WITH changed AS (");
        }
        out.push_sql("UPDATE task_executions SET ");
        self.changeset.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.condition.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING ");
        out.push_sql(R::COLUMNS);
        let Some(event) = &self.event else {
            return Ok(());
        };
        out.push_sql(concat!(
            "), logged AS (",
            crate::__insert_events_head!(),
            " SELECT "
        ));
        out.push_bind_param::<DbUuid, _>(&event.id)?;
        out.push_sql(", changed.pipeline_execution_id, ");
        out.push_bind_param::<Nullable<DbUuid>, _>(&event.task_execution_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&event.event_type)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<DbJson>, _>(&event.event_data)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<DbUuid>, _>(&event.runner_id)?;
        out.push_sql(", ");
        out.push_bind_param::<UtcTimestamp, _>(&event.created_at)?;
        out.push_sql(" FROM changed) SELECT ");
        out.push_sql(R::COLUMNS);
        out.push_sql(" FROM changed");
        Ok(())
    }
}

// Like `query_cached_by_text!`, with the row type chosen by `R`: no static
// query id, so diesel caches the statement by its text and binds' types.
impl<S, DB, R> diesel::query_builder::QueryId for GuardedUpdate<S, DB, R> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<S, DB, R: Returning> diesel::query_builder::Query for GuardedUpdate<S, DB, R> {
    type SqlType = R::SqlType;
}

impl<S, DB, R, Conn> RunQueryDsl<Conn> for GuardedUpdate<S, DB, R> {}
