//! Splitting large inputs so that no statement exceeds a backend's limit on
//! bound parameters (SQLite: 32,766; PostgreSQL: 65,535).

/// Most parameters one statement binds.
pub const MAX_BINDS_PER_STATEMENT: usize = 30_000;

/// How many rows of `binds_per_row` parameters fit in one statement.
pub fn rows_per_statement(binds_per_row: usize) -> usize {
    (MAX_BINDS_PER_STATEMENT / binds_per_row.max(1)).max(1)
}

/// Most values one `IN (…)` list binds, leaving room for a few other parameters.
pub const MAX_IN_LIST: usize = MAX_BINDS_PER_STATEMENT - 16;
