//! Helpers shared by the topic modules of the integration tests: fixtures,
//! audit-log and row-count readers, and assertions on `DalError`s.

use std::collections::HashMap;

use diesel::prelude::*;
use te_core::schema::{
    contexts, execution_events, pipeline_executions, task_execution_metadata, task_executions,
};
use te_core::toolkit::bind;
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

/// Creates a pipeline execution named `etl` and returns it.
pub(crate) async fn pipeline(dal: &TaskExecutionDal) -> PipelineExecution {
    dal.create_pipeline_execution(NewPipelineExecution::new("etl"))
        .await
        .unwrap()
}

/// A fresh database on the backend `TE_TEST_BACKEND` selects, holding one
/// pipeline execution named `etl`; returns the database and the pipeline's id.
pub(crate) async fn db_with_pipeline() -> (TestDb, Uuid) {
    let db = TestDb::new().await;
    let pipeline_id = pipeline(&db).await.id;
    (db, pipeline_id)
}

/// Creates a pipeline execution named `etl` with `n` tasks in `Ready`, as
/// [`create_ready`] names them; returns the pipeline's id and the tasks.
pub(crate) async fn ready_pipeline(dal: &TaskExecutionDal, n: usize) -> (Uuid, Vec<TaskExecution>) {
    let pipeline_id = pipeline(dal).await.id;
    (pipeline_id, create_ready(dal, pipeline_id, n).await)
}

/// A second handle on `db`'s database, with a pool of at most
/// `max_connections` connections.
pub(crate) async fn handle_with_pool(db: &TestDb, max_connections: usize) -> TaskExecutionDal {
    TaskExecutionDal::connect_with(DalConfig::new(db.url()).max_connections(max_connections))
        .await
        .unwrap()
}

/// Creates a task of `pipeline_id` named `name`, directly in `status`.
pub(crate) async fn task_in(
    dal: &TaskExecutionDal,
    pipeline_id: Uuid,
    name: &str,
    status: TaskStatus,
) -> TaskExecution {
    dal.create(NewTaskExecution::new(pipeline_id, name).status(status))
        .await
        .unwrap()
}

/// Creates a task of `pipeline_id` named `name` in `Ready` and claims it for
/// `runner` through the DAL, as a worker would; returns its id. No other
/// task may be ready.
pub(crate) async fn ready_and_claimed(
    dal: &TaskExecutionDal,
    pipeline_id: Uuid,
    name: &str,
    runner: Uuid,
) -> Uuid {
    let task = task_in(dal, pipeline_id, name, TaskStatus::Ready).await;
    let claimed = dal.claim_ready_tasks_for_runner(runner, 1).await.unwrap();
    assert_eq!(ids(&claimed), [task.id], "the only ready task is claimed");
    task.id
}

/// Creates a pipeline execution named `pipeline_name` holding one task named
/// `task_name`, claimed by a new runner as in [`ready_and_claimed`]; returns
/// the pipeline's id, the task's id and the runner.
pub(crate) async fn claimed_in_new_pipeline(
    dal: &TaskExecutionDal,
    pipeline_name: &str,
    task_name: &str,
) -> (Uuid, Uuid, Uuid) {
    let pipeline_id = dal
        .create_pipeline_execution(NewPipelineExecution::new(pipeline_name))
        .await
        .unwrap()
        .id;
    let runner = Uuid::new_v4();
    let task_id = ready_and_claimed(dal, pipeline_id, task_name, runner).await;
    (pipeline_id, task_id, runner)
}

/// Creates `n` tasks of `pipeline_id` in `Ready`, named `task-00000`,
/// `task-00001`, ..., and returns them in that order.
pub(crate) async fn create_ready(
    dal: &TaskExecutionDal,
    pipeline_id: Uuid,
    n: usize,
) -> Vec<TaskExecution> {
    dal.create_many(
        (0..n)
            .map(|i| {
                NewTaskExecution::new(pipeline_id, format!("task-{i:05}")).status(TaskStatus::Ready)
            })
            .collect(),
    )
    .await
    .unwrap()
}

/// Rows of tasks of `pipeline_id` in `status`, one for each of `names`,
/// stamped `now`: for `TestDb::insert_tasks`, which writes them as given
/// (without events).
pub(crate) fn task_rows(
    pipeline_id: Uuid,
    status: TaskStatus,
    now: chrono::DateTime<chrono::Utc>,
    names: impl IntoIterator<Item = String>,
) -> Vec<TaskExecution> {
    names
        .into_iter()
        .map(|name| {
            NewTaskExecution::new(pipeline_id, name)
                .status(status)
                .into_row(now)
        })
        .collect()
}

/// The ids of claimed tasks, in claim order.
pub(crate) fn ids(claimed: &[ClaimResult]) -> Vec<Uuid> {
    claimed.iter().map(|c| c.id).collect()
}

/// The ids of the tasks a claim that must succeed took, in claim order.
pub(crate) fn claimed_ids(claim: Result<Vec<ClaimResult>, DalError>) -> Vec<Uuid> {
    ids(&claim.unwrap())
}

/// Claims ready tasks `batch` at a time, for `runner` when it is given and
/// with `claim_ready_task` otherwise, until a claim comes back empty; returns
/// the ids claimed. Asserts that no claim exceeds `batch`.
pub(crate) async fn claim_until_empty(
    dal: &TaskExecutionDal,
    runner: Option<Uuid>,
    batch: usize,
) -> Vec<Uuid> {
    let mut mine = Vec::new();
    loop {
        let claimed = match runner {
            Some(r) => dal.claim_ready_tasks_for_runner(r, batch).await,
            None => dal.claim_ready_task(batch).await,
        }
        .unwrap();
        assert!(claimed.len() <= batch);
        if claimed.is_empty() {
            return mine;
        }
        mine.extend(claimed.into_iter().map(|c| c.id));
    }
}

/// Every task's status, by task id.
pub(crate) async fn task_statuses(dal: &TaskExecutionDal) -> HashMap<Uuid, TaskStatus> {
    dal.run(|conn| {
        Ok(task_executions::table
            .select((task_executions::id, task_executions::status))
            .load::<(Uuid, TaskStatus)>(conn)?
            .into_iter()
            .collect())
    })
    .await
    .unwrap()
}

/// Audit events in log (sequence) order: all of them, or only those of `task`
/// when it is given, and only those of `event_type` when it is given.
pub(crate) async fn events(
    dal: &TaskExecutionDal,
    task: Option<Uuid>,
    event_type: Option<EventType>,
) -> Vec<ExecutionEvent> {
    dal.run(move |conn| {
        let mut query = execution_events::table
            .order(execution_events::sequence)
            .select(ExecutionEvent::as_select())
            .into_boxed();
        if let Some(task) = task {
            query = query.filter(execution_events::task_execution_id.eq(bind::opt_id(Some(task))));
        }
        if let Some(event_type) = event_type {
            query = query.filter(execution_events::event_type.eq(event_type));
        }
        Ok(query.load(conn)?)
    })
    .await
    .unwrap()
}

/// How many audit events there are: all of them, or only those of `task` when
/// it is given.
pub(crate) async fn count_events(dal: &TaskExecutionDal, task: Option<Uuid>) -> i64 {
    dal.run(move |conn| {
        let mut query = execution_events::table.into_boxed();
        if let Some(task) = task {
            query = query.filter(execution_events::task_execution_id.eq(bind::opt_id(Some(task))));
        }
        Ok(query.count().get_result(conn)?)
    })
    .await
    .unwrap()
}

/// Terminates every other session on `db`'s database (PostgreSQL only), as a
/// server restart or a network cut would; returns how many.
pub(crate) async fn terminate_backends(db: &TestDb) -> i64 {
    count_of(
        db,
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await
}

/// Runs `sql`, a query of one `bigint` column `n` in one row, on `db`.
pub(crate) async fn count_of(db: &TestDb, sql: &'static str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    db.run(move |conn| Ok(diesel::sql_query(sql).get_result::<Count>(conn)?.n))
        .await
        .unwrap()
}

/// The number of rows in each table of the schema.
///
/// Compare whole values to check that a refused operation wrote nothing; build
/// expected values with `RowCounts { tasks: 3, ..Default::default() }`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowCounts {
    /// Rows of `pipeline_executions`.
    pub(crate) pipelines: i64,
    /// Rows of `task_executions`.
    pub(crate) tasks: i64,
    /// Rows of `contexts`.
    pub(crate) contexts: i64,
    /// Rows of `task_execution_metadata`.
    pub(crate) metadata: i64,
    /// Rows of `execution_events`.
    pub(crate) events: i64,
}

/// Counts the rows of every table.
pub(crate) async fn row_counts(dal: &TaskExecutionDal) -> RowCounts {
    dal.run(|conn| {
        Ok(RowCounts {
            pipelines: pipeline_executions::table.count().get_result(conn)?,
            tasks: task_executions::table.count().get_result(conn)?,
            contexts: contexts::table.count().get_result(conn)?,
            metadata: task_execution_metadata::table.count().get_result(conn)?,
            events: execution_events::table.count().get_result(conn)?,
        })
    })
    .await
    .unwrap()
}

/// Asserts that `result` is `Ok` with nothing in it (an empty list or map),
/// showing what it holds when it is not.
pub(crate) fn assert_empty<C: std::fmt::Debug>(result: Result<C, DalError>)
where
    for<'a> &'a C: IntoIterator,
{
    let found = result.expect("an empty answer");
    assert!(
        (&found).into_iter().next().is_none(),
        "expected nothing, got {found:?}"
    );
}

/// Asserts that `result` is `DalError::InvalidInput` naming `expected_field`.
pub(crate) fn assert_invalid<T: std::fmt::Debug>(
    result: Result<T, DalError>,
    expected_field: &str,
) {
    assert_error(
        result,
        "InvalidInput for",
        expected_field,
        |err| match err {
            DalError::InvalidInput { field, .. } => Some(field),
            _ => None,
        },
    );
}

/// Asserts that `result` is `DalError::NotFound` of `expected_entity`.
pub(crate) fn assert_not_found<T: std::fmt::Debug>(
    result: Result<T, DalError>,
    expected_entity: &str,
) {
    assert_error(result, "NotFound", expected_entity, |err| match err {
        DalError::NotFound { entity, .. } => Some(entity),
        _ => None,
    });
}

/// Asserts that `result` is the error `name_of` recognises (`kind`), naming
/// `expected`.
fn assert_error<T: std::fmt::Debug>(
    result: Result<T, DalError>,
    kind: &str,
    expected: &str,
    name_of: impl Fn(&DalError) -> Option<&'static str>,
) {
    match result.as_ref().map_err(&name_of) {
        Err(Some(name)) => assert_eq!(name, expected),
        _ => panic!("expected {kind} {expected}, got {result:?}"),
    }
}

/// The types of task `task`'s audit events, in order, as
/// `get_events_for_task` returns them.
pub(crate) async fn event_types(dal: &TaskExecutionDal, task: Uuid) -> Vec<EventType> {
    let events = dal.get_events_for_task(task).await.unwrap();
    events.iter().map(|e| e.event_type).collect()
}

/// How many migrations the backend has: the folders of `migrations/<backend>`.
pub(crate) fn migration_count(backend: Backend) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend.as_str());
    std::fs::read_dir(dir)
        .expect("the migrations folder")
        .filter(|entry| entry.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count()
}

/// Takes SQLite's write lock from another connection, as another process
/// would, and releases it after `hold`; returns once the lock is held, with
/// the holding thread to join. On PostgreSQL, which has no such lock,
/// nothing is held and `None` is returned.
pub(crate) fn hold_write_lock(
    db: &TestDb,
    hold: std::time::Duration,
) -> Option<std::thread::JoinHandle<()>> {
    db.sqlite_path()?;
    let holder = LockHolder::take(db, Lock::Row(Uuid::nil()));
    Some(std::thread::spawn(move || {
        std::thread::sleep(hold);
        holder.release();
    }))
}

/// What a [`LockHolder`] holds on PostgreSQL; on SQLite it always holds
/// the database's write lock, whatever is named here.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lock {
    /// One task's row (`SELECT … FOR UPDATE`), as a slow writer would.
    Row(Uuid),
    /// A whole table (`LOCK TABLE … IN ACCESS EXCLUSIVE MODE`): the next
    /// statements that read it wait (a claim reads `held_pipelines`).
    Table(&'static str),
}

/// A lock held by another connection, as a slow writer would hold it, until
/// [`LockHolder::release`] (or until the holder is dropped).
pub(crate) struct LockHolder {
    release: std::sync::mpsc::Sender<()>,
    held: std::sync::mpsc::Receiver<()>,
    thread: std::thread::JoinHandle<()>,
}

impl LockHolder {
    /// Asks for `lock` from another connection and returns at once: the
    /// lock may still be waiting for others (see [`LockHolder::held`]).
    pub(crate) fn ask(db: &TestDb, lock: Lock) -> LockHolder {
        use diesel::connection::SimpleConnection;
        // The URL as the driver takes it (without the DAL's own parameters).
        let url = match te_core::Target::parse(db.url()).unwrap() {
            te_core::Target::Postgres(url) => url,
            _ => String::new(),
        };
        let sqlite = db.sqlite_path().map(|p| p.to_str().unwrap().to_owned());
        let (held_tx, held) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let finish: Box<dyn FnOnce()> = match sqlite {
                Some(path) => {
                    let mut conn = diesel::SqliteConnection::establish(&path).unwrap();
                    conn.batch_execute("PRAGMA busy_timeout = 10000; BEGIN IMMEDIATE")
                        .unwrap();
                    Box::new(move || conn.batch_execute("ROLLBACK").unwrap())
                }
                None => {
                    let mut conn = diesel::PgConnection::establish(&url).unwrap();
                    conn.batch_execute("BEGIN").unwrap();
                    match lock {
                        Lock::Row(task_id) => {
                            task_executions::table
                                .find(bind::id(task_id))
                                .select(task_executions::id)
                                .for_update()
                                .first::<Uuid>(&mut conn)
                                .unwrap();
                        }
                        Lock::Table(table) => conn
                            .batch_execute(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
                            .unwrap(),
                    }
                    Box::new(move || conn.batch_execute("ROLLBACK").unwrap())
                }
            };
            held_tx.send(()).unwrap();
            // Released on request, or when the test drops the holder.
            let _ = release_rx.recv();
            finish();
        });
        LockHolder {
            release,
            held,
            thread,
        }
    }

    /// Takes `lock` from another connection; returns once it is held.
    pub(crate) fn take(db: &TestDb, lock: Lock) -> LockHolder {
        let holder = LockHolder::ask(db, lock);
        holder.held();
        holder
    }

    /// Waits until the lock is held.
    pub(crate) fn held(&self) {
        self.held.recv().unwrap();
    }

    /// Releases the lock and waits until it is gone.
    pub(crate) fn release(self) {
        let _ = self.release.send(());
        self.thread.join().unwrap();
    }
}

/// How many sessions on `db`'s database wait for a lock another session
/// holds (PostgreSQL); `None` on SQLite, whose waiting writers cannot be seen.
pub(crate) async fn lock_waiters(db: &TestDb) -> Option<i64> {
    #[derive(QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    if db.sqlite_path().is_some() {
        return None;
    }
    let n = db
        .run(|conn| {
            let row: Waiting = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .get_result(conn)?;
            Ok(row.n)
        })
        .await
        .unwrap();
    Some(n)
}

/// Waits until `done()` holds or at least `waiters` sessions wait for a lock
/// (PostgreSQL; on SQLite, for a moment), for at most ten seconds.
pub(crate) async fn until_waiting(db: &TestDb, waiters: i64, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() && std::time::Instant::now() < deadline {
        match lock_waiters(db).await {
            Some(n) if n >= waiters => return,
            Some(_) => {}
            None => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
