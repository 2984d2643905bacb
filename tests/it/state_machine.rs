//! Model-based test of the task state machine: random sequences of
//! operations on a few tasks and runners, each result predicted by a small
//! in-memory model of API.md's transition table, and the audit log checked to
//! hold exactly one event per accepted transition and none for a refused one.
//!
//! Cases: `TE_PROPTEST_CASES` (default 200; `cargo xtask test --long` sets
//! more). Every case runs on one pipeline in one database per test; the rows
//! are deleted between cases.

use std::collections::HashMap;

use chrono::Utc;
use diesel::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use te_core::schema::{
    contexts, execution_events, pipeline_executions, task_execution_metadata, task_executions,
};
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use TaskStatus::{Completed, Failed, NotStarted, Ready, Running, Skipped};

const TASKS: usize = 3;
const RUNNERS: usize = 2;
const MAX_ATTEMPTS: i32 = 2;

/// One operation of a generated sequence; `usize`s index tasks and runners.
#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Ready(usize),
    Start(usize),
    Claim,
    ClaimAsRunner(usize),
    ClaimFor(usize, usize),
    Complete(usize),
    CompleteAs(usize, usize),
    Fail(usize),
    FailAs(usize, usize),
    Skip(usize),
    Abandon(usize),
    Retry(usize),
    Reset(usize),
    Recover(usize),
    Heartbeat(usize, usize),
    Release(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let task = 0..TASKS;
    let runner = 0..RUNNERS;
    prop_oneof![
        3 => task.clone().prop_map(Op::Create),
        2 => task.clone().prop_map(Op::Ready),
        1 => task.clone().prop_map(Op::Start),
        2 => Just(Op::Claim),
        2 => runner.clone().prop_map(Op::ClaimAsRunner),
        1 => (task.clone(), runner.clone()).prop_map(|(t, r)| Op::ClaimFor(t, r)),
        1 => task.clone().prop_map(Op::Complete),
        2 => (task.clone(), runner.clone()).prop_map(|(t, r)| Op::CompleteAs(t, r)),
        1 => task.clone().prop_map(Op::Fail),
        1 => (task.clone(), runner.clone()).prop_map(|(t, r)| Op::FailAs(t, r)),
        1 => task.clone().prop_map(Op::Skip),
        1 => task.clone().prop_map(Op::Abandon),
        1 => task.clone().prop_map(Op::Retry),
        1 => task.clone().prop_map(Op::Reset),
        1 => task.clone().prop_map(Op::Recover),
        1 => (task.clone(), runner).prop_map(|(t, r)| Op::Heartbeat(t, r)),
        1 => task.prop_map(Op::Release),
    ]
}

/// What an operation returned, reduced to what the model predicts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Done,
    Bool(bool),
    /// The indexes of the claimed tasks, in index order.
    Claimed(Vec<usize>),
    Refused(Refusal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    NotFound,
    Conflict,
    InvalidInput,
    Illegal { from: TaskStatus, to: TaskStatus },
}

#[derive(Debug, Clone)]
struct ModelTask {
    status: TaskStatus,
    holder: Option<usize>,
    attempt: i32,
    events: Vec<EventType>,
}

/// API.md's transition table for a few tasks.
#[derive(Debug, Default)]
struct Model {
    tasks: [Option<ModelTask>; TASKS],
}

impl Model {
    /// Applies `op` and predicts its answer.
    fn apply(&mut self, op: &Op) -> Answer {
        use Answer::{Bool, Claimed, Done, Refused};
        if let Op::Create(i) = *op {
            if self.tasks[i].is_some() {
                return Refused(Refusal::Conflict);
            }
            self.tasks[i] = Some(ModelTask {
                status: NotStarted,
                holder: None,
                attempt: 1,
                events: vec![EventType::TaskCreated],
            });
            return Done;
        }
        if let Op::Claim | Op::ClaimAsRunner(_) = *op {
            let runner = match *op {
                Op::ClaimAsRunner(r) => Some(r),
                _ => None,
            };
            let mut claimed = Vec::new();
            for (i, task) in self.tasks.iter_mut().enumerate() {
                if let Some(t) = task
                    && t.status == Ready
                    && (t.holder.is_none() || t.holder == runner)
                {
                    t.status = Running;
                    t.holder = runner;
                    t.events.push(EventType::TaskClaimed);
                    claimed.push(i);
                }
            }
            return Claimed(claimed);
        }
        let i = task_of(op);
        let Some(t) = self.tasks[i].as_mut() else {
            return Refused(Refusal::NotFound);
        };
        let from = t.status;
        // A guarded move: `to` from any of `allowed`, with `event`.
        let go = |allowed: &[TaskStatus], to: TaskStatus, event: EventType, t: &mut ModelTask| {
            if allowed.contains(&t.status) {
                t.status = to;
                if to.is_terminal() {
                    t.holder = None;
                }
                t.events.push(event);
                Ok(())
            } else {
                Err(Refusal::Illegal { from, to })
            }
        };
        let unit = |r: Result<(), Refusal>| r.map_or_else(Refused, |()| Done);
        match *op {
            Op::Ready(_) => unit(go(&[NotStarted, Ready], Ready, EventType::TaskReady, t)),
            Op::Start(_) => unit(go(&[Ready, Running], Running, EventType::TaskStarted, t)),
            Op::Complete(_) => match go(&[Running], Completed, EventType::TaskCompleted, t) {
                Ok(()) => Bool(true),
                Err(r) => Refused(r),
            },
            Op::CompleteAs(_, r) => {
                if t.holder != Some(r) {
                    return Bool(false);
                }
                match go(&[Running], Completed, EventType::TaskCompleted, t) {
                    Ok(()) => Bool(true),
                    Err(r) => Refused(r),
                }
            }
            Op::Fail(_) => match go(
                &[NotStarted, Ready, Running],
                Failed,
                EventType::TaskFailed,
                t,
            ) {
                Ok(()) => Bool(true),
                Err(r) => Refused(r),
            },
            Op::FailAs(_, r) => {
                if t.holder != Some(r) {
                    return Bool(false);
                }
                match go(
                    &[NotStarted, Ready, Running],
                    Failed,
                    EventType::TaskFailed,
                    t,
                ) {
                    Ok(()) => Bool(true),
                    Err(r) => Refused(r),
                }
            }
            Op::Skip(_) => unit(go(&[NotStarted, Ready], Skipped, EventType::TaskSkipped, t)),
            Op::Abandon(_) => unit(go(
                &[NotStarted, Ready, Running],
                Failed,
                EventType::TaskAbandoned,
                t,
            )),
            Op::Retry(_) => {
                if !matches!(t.status, Running | Failed) {
                    return Refused(Refusal::Illegal { from, to: Ready });
                }
                if t.attempt + 1 > MAX_ATTEMPTS {
                    return Refused(Refusal::InvalidInput);
                }
                t.attempt += 1;
                t.status = Ready;
                t.holder = None;
                t.events.push(EventType::RetryScheduled);
                Done
            }
            Op::Reset(_) => {
                t.attempt = 1;
                t.status = Ready;
                t.holder = None;
                t.events.push(EventType::RetryStateReset);
                Done
            }
            Op::Recover(_) => {
                let r = go(&[Running, Ready], Ready, EventType::RecoveryReset, t);
                if r.is_ok() {
                    t.holder = None;
                }
                unit(r)
            }
            Op::ClaimFor(_, r) => {
                let ok = matches!(t.status, Ready | Running)
                    && (t.holder.is_none() || t.holder == Some(r));
                if ok {
                    t.holder = Some(r);
                    t.events.push(EventType::RunnerClaimed);
                }
                Bool(ok)
            }
            Op::Heartbeat(_, r) => Bool(matches!(t.status, Ready | Running) && t.holder == Some(r)),
            Op::Release(_) => {
                if t.holder.take().is_some() {
                    t.events.push(EventType::ClaimReleased);
                }
                Done
            }
            Op::Create(_) | Op::Claim | Op::ClaimAsRunner(_) => unreachable!("handled above"),
        }
    }
}

fn task_of(op: &Op) -> usize {
    match *op {
        Op::Create(i)
        | Op::Ready(i)
        | Op::Start(i)
        | Op::ClaimFor(i, _)
        | Op::Complete(i)
        | Op::CompleteAs(i, _)
        | Op::Fail(i)
        | Op::FailAs(i, _)
        | Op::Skip(i)
        | Op::Abandon(i)
        | Op::Retry(i)
        | Op::Reset(i)
        | Op::Recover(i)
        | Op::Heartbeat(i, _)
        | Op::Release(i) => i,
        Op::Claim | Op::ClaimAsRunner(_) => unreachable!("claims name no task"),
    }
}

/// One case's pipeline, its tasks' ids (an unused id until created) and the runners.
struct World {
    pipeline: Uuid,
    ids: [Uuid; TASKS],
    runners: [Uuid; RUNNERS],
    attempts: [i32; TASKS],
}

impl World {
    fn index(&self, id: Uuid) -> usize {
        self.ids
            .iter()
            .position(|&x| x == id)
            .expect("a task of this case")
    }
}

fn refusal(err: DalError) -> Result<Refusal, TestCaseError> {
    Ok(match err {
        DalError::NotFound { .. } => Refusal::NotFound,
        DalError::Conflict { .. } => Refusal::Conflict,
        DalError::InvalidInput { .. } => Refusal::InvalidInput,
        DalError::IllegalTransition { from, to, .. } => Refusal::Illegal { from, to },
        other => return Err(TestCaseError::fail(format!("unexpected error: {other:?}"))),
    })
}

fn answer<T>(
    result: Result<T, DalError>,
    f: impl FnOnce(T) -> Answer,
) -> Result<Answer, TestCaseError> {
    match result {
        Ok(v) => Ok(f(v)),
        Err(e) => Ok(Answer::Refused(refusal(e)?)),
    }
}

/// Runs `op` through the DAL.
async fn perform(dal: &TaskExecutionDal, w: &mut World, op: &Op) -> Result<Answer, TestCaseError> {
    let done = |()| Answer::Done;
    let (ids, runners) = (w.ids, w.runners);
    let id = move |i: usize| ids[i];
    let runner = move |r: usize| runners[r];
    match *op {
        Op::Create(i) => {
            let result = dal
                .create(
                    NewTaskExecution::new(w.pipeline, format!("task-{i}"))
                        .max_attempts(MAX_ATTEMPTS),
                )
                .await;
            if let Ok(task) = &result {
                w.ids[i] = task.id;
            }
            answer(result, |_| Answer::Done)
        }
        Op::Ready(i) => answer(dal.mark_ready(id(i)).await, done),
        Op::Start(i) => answer(dal.mark_started(id(i)).await, done),
        Op::Claim | Op::ClaimAsRunner(_) => {
            let result = match *op {
                Op::ClaimAsRunner(r) => dal.claim_ready_tasks_for_runner(runner(r), TASKS).await,
                _ => dal.claim_ready_task(TASKS).await,
            };
            answer(result, |claimed| {
                let mut indexes: Vec<usize> = claimed.iter().map(|c| w.index(c.id)).collect();
                indexes.sort_unstable();
                Answer::Claimed(indexes)
            })
        }
        Op::ClaimFor(i, r) => answer(dal.claim_for_runner(id(i), runner(r)).await, |c| {
            Answer::Bool(c == RunnerClaimResult::Claimed)
        }),
        Op::Complete(i) => answer(dal.mark_completed(id(i), None).await, Answer::Bool),
        Op::CompleteAs(i, r) => answer(
            dal.mark_completed(id(i), Some(runner(r))).await,
            Answer::Bool,
        ),
        Op::Fail(i) => answer(dal.mark_failed(id(i), "boom", None).await, Answer::Bool),
        Op::FailAs(i, r) => answer(
            dal.mark_failed(id(i), "boom", Some(runner(r))).await,
            Answer::Bool,
        ),
        Op::Skip(i) => answer(dal.mark_skipped(id(i), "not needed").await, done),
        Op::Abandon(i) => answer(dal.mark_abandoned(id(i), "gave up").await, done),
        Op::Retry(i) => {
            let due = Utc::now() - chrono::Duration::seconds(1);
            let result = dal.schedule_retry(id(i), due, w.attempts[i] + 1).await;
            if result.is_ok() {
                w.attempts[i] += 1;
            }
            answer(result, done)
        }
        Op::Reset(i) => {
            let result = dal.reset_retry_state(id(i)).await;
            if result.is_ok() {
                w.attempts[i] = 1;
            }
            answer(result, done)
        }
        Op::Recover(i) => answer(dal.reset_task_for_recovery(id(i)).await, done),
        Op::Heartbeat(i, r) => answer(dal.heartbeat(id(i), runner(r)).await, |h| {
            Answer::Bool(h == HeartbeatResult::Ok)
        }),
        Op::Release(i) => answer(dal.release_runner_claim(id(i)).await, done),
    }
}

/// Deletes every row, so that each case starts from an empty database.
async fn clear(dal: &TaskExecutionDal) {
    dal.write(|conn| {
        diesel::delete(execution_events::table).execute(conn)?;
        diesel::delete(task_execution_metadata::table).execute(conn)?;
        diesel::delete(task_executions::table).execute(conn)?;
        diesel::delete(pipeline_executions::table).execute(conn)?;
        diesel::delete(contexts::table).execute(conn)?;
        Ok(())
    })
    .await
    .expect("clear the database between cases");
}

async fn run_case(dal: &TaskExecutionDal, ops: &[Op]) -> Result<(), TestCaseError> {
    clear(dal).await;
    let pipeline = dal
        .create_pipeline_execution(NewPipelineExecution::new("model"))
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .id;
    let mut world = World {
        pipeline,
        ids: std::array::from_fn(|_| Uuid::new_v4()),
        runners: std::array::from_fn(|_| Uuid::new_v4()),
        attempts: [1; TASKS],
    };
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        let expected = model.apply(op);
        let actual = perform(dal, &mut world, op).await?;
        prop_assert_eq!(&actual, &expected, "step {} ({:?})", step, op);
    }

    // The rows and the audit log agree with the model.
    let (rows, events) = dal
        .run(move |conn| {
            let rows = task_executions::table
                .select((
                    task_executions::id,
                    task_executions::status,
                    task_executions::claimed_by,
                    task_executions::attempt,
                ))
                .load::<(Uuid, TaskStatus, Option<Uuid>, i32)>(conn)?;
            let events = execution_events::table
                .filter(execution_events::task_execution_id.is_not_null())
                .order(execution_events::sequence.asc())
                .select((
                    execution_events::task_execution_id,
                    execution_events::event_type,
                ))
                .load::<(Option<Uuid>, EventType)>(conn)?;
            Ok((rows, events))
        })
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut logged: HashMap<Uuid, Vec<EventType>> = HashMap::new();
    for (task, event) in events {
        logged
            .entry(task.expect("filtered"))
            .or_default()
            .push(event);
    }
    let created: Vec<usize> = (0..TASKS).filter(|&i| model.tasks[i].is_some()).collect();
    prop_assert_eq!(rows.len(), created.len());
    for (id, status, holder, attempt) in rows {
        let i = world.index(id);
        let t = model.tasks[i].as_ref().expect("created in the model");
        prop_assert_eq!(status, t.status, "status of task {}", i);
        prop_assert_eq!(
            holder,
            t.holder.map(|r| world.runners[r]),
            "holder of task {}",
            i
        );
        prop_assert_eq!(attempt, t.attempt, "attempt of task {}", i);
        prop_assert_eq!(
            logged.remove(&id).unwrap_or_default(),
            t.events.clone(),
            "events of task {}",
            i
        );
    }
    prop_assert!(logged.is_empty(), "events of unknown tasks: {:?}", logged);
    Ok(())
}

/// Cases per backend: `TE_PROPTEST_CASES`, at least 200.
fn cases() -> u32 {
    std::env::var("TE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[test]
fn every_operation_sequence_matches_the_transition_table_and_logs_one_event_per_change() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The pool's connections are dropped on this runtime.
    let _runtime = rt.enter();
    let db = rt.block_on(TestDb::new());
    let dal = db.dal().clone();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
        rt.block_on(run_case(&dal, &ops))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    drop(db);
}
