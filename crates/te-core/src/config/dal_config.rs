//! `DalConfig` and `Synchronous`: how to connect and how the pool behaves.

use std::fmt;
use std::time::Duration;

use crate::config::redact::redact_password;

/// How to connect and how the connection pool behaves.
///
/// `DalConfig::new(url)` gives sensible defaults for the backend the URL
/// selects; every field can be changed before
/// [`crate::TaskExecutionDal::connect_with`].
///
/// Settings may also be given as query parameters of the URL, which take
/// precedence over the fields and never reach the driver: `pgbouncer=true`
/// ([`DalConfig::transaction_pooler`]), `listen_url=…`
/// ([`DalConfig::listen_url`], percent-encoded) for PostgreSQL,
/// `synchronous=normal|full` ([`DalConfig::synchronous`]) for SQLite. A
/// parameter of the other backend, or a value not listed, is
/// [`DalError::Config`](crate::DalError::Config) when connecting.
///
/// Its `Debug` shows the URLs with any password replaced by `***`.
#[derive(Clone)]
#[non_exhaustive]
pub struct DalConfig {
    /// The database URL (see [`Target::parse`](crate::Target::parse)).
    pub url: String,
    /// Most connections the pool keeps open. `None`: 10 on PostgreSQL, 4 on a
    /// SQLite file, 1 for in-memory SQLite (each in-memory connection would
    /// otherwise see its own database).
    pub max_connections: Option<usize>,
    /// How long an operation waits for a free connection before
    /// [`DalError::Timeout`](crate::DalError::Timeout) naming `acquire_timeout`.
    pub acquire_timeout: Duration,
    /// How long making one new connection may take.
    pub connect_timeout: Duration,
    /// SQLite only: how long a write waits in all in this handle's queue of
    /// writes and for the database's write lock (which another process may
    /// hold), and how long any statement waits for a lock, before
    /// [`DalError::Timeout`](crate::DalError::Timeout) naming `sqlite_busy_timeout`.
    pub sqlite_busy_timeout: Duration,
    /// PostgreSQL only: the server is reached through a connection pooler in
    /// transaction mode (pgbouncer, pgcat, Supavisor), which hands each
    /// transaction to whichever server connection is free. Every statement
    /// is then sent unnamed, with its parameters, in one round trip (no
    /// named prepared statement, which would exist on one server connection
    /// only), no session state is relied on between transactions, and
    /// [`crate::TaskExecutionDal`]'s wake-ups `LISTEN` on
    /// [`DalConfig::listen_url`] or, without it, poll (every 250 ms) for new
    /// audit events. Costs: each statement is parsed and planned on every
    /// call. Default `false`; `pgbouncer=true` in the URL sets it.
    pub transaction_pooler: bool,
    /// PostgreSQL only: a direct connection to the server (not through a
    /// pooler) on which wake-ups `LISTEN`, for a handle whose URL goes
    /// through a transaction-mode pooler. `listen_url=…` (percent-encoded)
    /// in the URL sets it. Its `Debug` hides any password.
    pub listen_url: Option<String>,
    /// SQLite only: what a commit waits for (see [`Synchronous`]). Default
    /// [`Synchronous::Normal`]; `synchronous=full` in the URL sets
    /// [`Synchronous::Full`].
    pub synchronous: Synchronous,
}

/// SQLite's `synchronous` setting (the database runs in WAL mode): what a
/// commit waits for before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `PRAGMA synchronous = NORMAL`, the default: a commit is written to the
    /// WAL file, which is flushed to disk at checkpoints. A process that is
    /// killed loses nothing acknowledged; an operating-system crash or a
    /// power cut may lose the last commits (never corrupting the database).
    #[default]
    Normal,
    /// `PRAGMA synchronous = FULL`: every commit is flushed to disk before it
    /// is acknowledged, so nothing acknowledged is lost even to a power cut;
    /// each commit waits for the disk (`te bench` measures the cost).
    Full,
}

impl Synchronous {
    /// The value of SQLite's `PRAGMA synchronous`: `"NORMAL"` or `"FULL"`.
    pub fn as_pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

impl fmt::Debug for DalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DalConfig")
            .field("url", &redact_password(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("sqlite_busy_timeout", &self.sqlite_busy_timeout)
            .field("transaction_pooler", &self.transaction_pooler)
            .field(
                "listen_url",
                &self.listen_url.as_deref().map(redact_password),
            )
            .field("synchronous", &self.synchronous)
            .finish()
    }
}

impl DalConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        DalConfig {
            url: url.into(),
            max_connections: None,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(30),
            transaction_pooler: false,
            listen_url: None,
            synchronous: Synchronous::Normal,
        }
    }

    /// Sets [`DalConfig::transaction_pooler`].
    pub fn transaction_pooler(mut self, behind_pooler: bool) -> Self {
        self.transaction_pooler = behind_pooler;
        self
    }

    /// Sets [`DalConfig::listen_url`].
    pub fn listen_url(mut self, url: impl Into<String>) -> Self {
        self.listen_url = Some(url.into());
        self
    }

    /// Sets [`DalConfig::synchronous`].
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets [`DalConfig::max_connections`].
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// Sets [`DalConfig::acquire_timeout`].
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets [`DalConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`DalConfig::sqlite_busy_timeout`].
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.sqlite_busy_timeout = timeout;
        self
    }
}
