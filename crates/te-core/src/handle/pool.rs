//! The connection pool: deadpool over `AnyConnection`, with each connection
//! opened by the concrete driver so that its real error is reported.

use deadpool::Runtime;
use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool_diesel::Connection as PooledConnection;
use diesel::ConnectionError;

use crate::config::{DalConfig, Target};
use crate::data::any_connection::AnyConnection;
use crate::handle::connection::establish;
use crate::sql::session;

/// A PostgreSQL connection idle for longer than this is checked with a
/// query before it is handed out again.
const IDLE_BEFORE_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Which idle connection a checkout gets: the one returned last, so that
/// the connections in use are as few as the calls in flight need and stay
/// warm. Measured with one connection per worker open (`te bench drain`, 8
/// workers, medians of 4): SQLite's per-task drain went from 7,016 to 7,648
/// tasks/s against handing out every idle connection in turn (first in,
/// first out), whose connections each find their page cache outdated by
/// the others' writes.
const QUEUE_MODE: managed::QueueMode = managed::QueueMode::Lifo;

/// The pool type behind a [`crate::TaskExecutionDal`].
pub type Pool = managed::Pool<ConnectionManager>;

/// A connection checked out of a [`Pool`].
pub(crate) type Object = managed::Object<ConnectionManager>;

/// Opens and checks connections for the pool.
#[derive(Debug)]
pub struct ConnectionManager {
    target: Target,
    config: DalConfig,
}

impl ConnectionManager {
    pub(crate) fn new(target: Target, config: DalConfig) -> Self {
        ConnectionManager { target, config }
    }
}

impl managed::Manager for ConnectionManager {
    type Type = PooledConnection<AnyConnection>;
    type Error = ConnectionError;

    async fn create(&self) -> Result<Self::Type, Self::Error> {
        let target = self.target.clone();
        let config = self.config.clone();
        PooledConnection::new(Runtime::Tokio1, move || establish(&target, &config)).await
    }

    async fn recycle(
        &self,
        conn: &mut Self::Type,
        metrics: &Metrics,
    ) -> RecycleResult<Self::Error> {
        if conn.is_mutex_poisoned() {
            return Err(RecycleError::message(
                "a query panicked while holding this connection",
            ));
        }
        // No query is sent here: a ping on every checkout would cost a round
        // trip per operation. A PostgreSQL connection that sat idle for a
        // while is checked (the server may have restarted meanwhile); one
        // that fails during a call is discarded by that call
        // (`TaskExecutionDal::run`).
        if matches!(self.target, Target::Postgres(_)) && metrics.last_used() > IDLE_BEFORE_CHECK {
            conn.interact(session::ping)
                .await
                .map_err(|e| RecycleError::message(format!("connection check aborted: {e}")))?
                .map_err(|e| {
                    RecycleError::Backend(ConnectionError::CouldntSetupConfiguration(e))
                })?;
        }
        Ok(())
    }
}

/// How many connections the pool for `target` keeps: one for an in-memory
/// SQLite database (each connection would be a database of its own),
/// otherwise `max_connections`, or 10 on PostgreSQL and 4 on a SQLite file.
fn pool_size(config: &DalConfig, target: &Target) -> usize {
    match (target, config.max_connections) {
        (Target::SqliteMemory, _) => 1,
        (_, Some(n)) => n.max(1),
        (Target::Postgres(_), None) => 10,
        (Target::SqliteFile(_), None) => 4,
    }
}

pub(crate) fn build(
    target: Target,
    config: DalConfig,
) -> Result<Pool, crate::ground::error::DalError> {
    let size = pool_size(&config, &target);
    let wait = config.acquire_timeout;
    let create = config.connect_timeout;
    managed::Pool::builder(ConnectionManager::new(target, config))
        .max_size(size)
        .queue_mode(QUEUE_MODE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(create))
        .recycle_timeout(Some(create))
        .build()
        .map_err(|e| {
            crate::ground::error::DalError::Config(format!("cannot build the connection pool: {e}"))
        })
}
