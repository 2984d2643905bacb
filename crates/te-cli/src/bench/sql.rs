//! The SQL `te bench` writes as text: `ANALYZE` of the tables a workload
//! has just loaded, on PostgreSQL.
//!
//! Why text: diesel has no DSL for `ANALYZE`, and the DAL has no operation
//! for it (autovacuum does it on a live database about a minute after a
//! bulk load; a benchmark cannot wait that long before every timed part).
//! No parameters.

use diesel::connection::SimpleConnection;

/// The DAL's tables a workload fills before it times anything.
const ANALYZE_LOADED_TABLES: &str =
    "ANALYZE task_executions, pipeline_executions, execution_events";

/// Gathers PostgreSQL's planner statistics on the DAL's tables.
pub(crate) fn analyze_loaded_tables(
    conn: &mut impl SimpleConnection,
) -> Result<(), diesel::result::Error> {
    conn.batch_execute(ANALYZE_LOADED_TABLES)
}
