//! `AnyConnection`: one diesel connection type over PostgreSQL and SQLite,
//! how each is opened, and the write transaction used by every write.

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, CacheSize, TransactionManager};
use diesel::{Connection, ConnectionError, PgConnection, SqliteConnection};

use crate::config::Backend;
use crate::config::{DalConfig, Target};
use crate::data::any_connection::AnyConnection;
use crate::ground::error::DalError;
use crate::sql::session;

impl AnyConnection {
    /// The backend of this connection.
    pub fn backend(&self) -> Backend {
        match self {
            AnyConnection::Postgres(_) => Backend::Postgres,
            AnyConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Opens one connection to `target`, reporting the driver's own error, and
/// prepares it: on SQLite WAL, a busy timeout, `foreign_keys = ON` and
/// `synchronous` as configured on every connection; on PostgreSQL behind a
/// transaction-mode pooler, no prepared-statement cache.
pub(crate) fn establish(
    target: &Target,
    config: &DalConfig,
) -> Result<AnyConnection, ConnectionError> {
    match target {
        Target::Postgres(url) => {
            let full_url = with_connect_timeout(url, config);
            // libpq's messages can echo parts of the URL: no password leaves here.
            let scrub = |text: String| {
                crate::config::redact::scrub_password(
                    url,
                    &crate::config::redact::scrub_password(&full_url, &text),
                )
            };
            PgConnection::establish(&full_url)
                .map(|mut pg| {
                    if config.transaction_pooler {
                        // Unnamed statements only: diesel then sends each
                        // with its parameters in one message, which a
                        // pooler keeps on one server connection. A named
                        // one would exist on one server connection only.
                        pg.set_prepared_statement_cache_size(CacheSize::Disabled);
                    }
                    AnyConnection::Postgres(pg)
                })
                .map_err(|err| match err {
                    ConnectionError::InvalidConnectionUrl(text) => {
                        ConnectionError::InvalidConnectionUrl(scrub(text))
                    }
                    other => ConnectionError::BadConnection(scrub(other.to_string())),
                })
        }
        Target::SqliteFile(path) => {
            let conn = SqliteConnection::establish(path).map_err(|e| match e {
                ConnectionError::BadConnection(msg) => {
                    ConnectionError::BadConnection(format!("{msg} (path: {path})"))
                }
                other => other,
            })?;
            prepare_sqlite(conn, config, true)
        }
        Target::SqliteMemory => {
            let conn = SqliteConnection::establish(":memory:")?;
            prepare_sqlite(conn, config, false)
        }
    }
}

fn prepare_sqlite(
    mut conn: SqliteConnection,
    config: &DalConfig,
    wal: bool,
) -> Result<AnyConnection, ConnectionError> {
    let wal = wal.then(|| config.synchronous.as_pragma());
    session::prepare_sqlite(&mut conn, config.sqlite_busy_timeout, wal)
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(AnyConnection::Sqlite(conn))
}

fn with_connect_timeout(url: &str, config: &DalConfig) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let secs = config.connect_timeout.as_secs().max(1);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={secs}")
}

/// [`write_transaction`] on SQLite with the wait for the write lock bounded
/// by `left` when that is less than the connection's configured busy timeout
/// `configured`: the busy timeout is lowered for this transaction and set
/// back afterwards. On PostgreSQL, exactly [`write_transaction`].
pub(crate) fn write_transaction_within<T, F>(
    conn: &mut AnyConnection,
    left: Duration,
    configured: Duration,
    f: F,
) -> Result<T, DalError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, DalError>,
{
    if matches!(conn, AnyConnection::Postgres(_)) || left >= configured {
        return write_transaction(conn, f);
    }
    session::set_busy_timeout(conn, left)?;
    let result = write_transaction(conn, f);
    if let Err(err) = session::set_busy_timeout(conn, configured) {
        // The transaction's outcome stands (it committed or rolled back);
        // this connection merely keeps a shorter busy timeout, which only
        // makes a later wait end sooner.
        tracing::warn!(error = %err, "could not restore the SQLite busy timeout");
    }
    result
}

/// Runs `f` in a write transaction and commits it when `f` returns `Ok`,
/// rolls it back otherwise.
///
/// On SQLite the transaction is `BEGIN IMMEDIATE`: it takes the database's
/// write lock up front (waiting up to the busy timeout), so two writers never
/// both read a row and then race to change it. On PostgreSQL it is an ordinary
/// transaction; guarded writes there are compare-and-set statements.
pub fn write_transaction<T, F>(conn: &mut AnyConnection, f: F) -> Result<T, DalError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, DalError>,
{
    match conn {
        AnyConnection::Postgres(_) => conn.transaction(f),
        AnyConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, session::BEGIN_IMMEDIATE)?;
            let result = f(conn);
            let AnyConnection::Sqlite(inner) = conn else {
                unreachable!("the connection's variant does not change")
            };
            match result {
                Ok(value) => {
                    if let Err(commit_err) = AnsiTransactionManager::commit_transaction(inner) {
                        let _ = AnsiTransactionManager::rollback_transaction(inner);
                        return Err(commit_err.into());
                    }
                    Ok(value)
                }
                Err(err) => {
                    AnsiTransactionManager::rollback_transaction(inner)?;
                    Err(err)
                }
            }
        }
    }
}
