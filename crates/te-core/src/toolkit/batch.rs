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

/// `values` without repeats, first occurrence kept, order otherwise
/// unchanged: a value repeated across two chunks of an `IN` list must not be
/// returned twice.
pub fn unique<T: Eq + std::hash::Hash + Clone>(values: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    values
        .into_iter()
        .filter(|value| seen.insert(value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_keeps_first_occurrences_in_order() {
        assert_eq!(unique(vec![3, 1, 3, 2, 1]), vec![3, 1, 2]);
        assert!(unique(Vec::<u8>::new()).is_empty());
    }

    #[test]
    fn rows_per_statement_stays_under_the_limit() {
        assert_eq!(rows_per_statement(20), MAX_BINDS_PER_STATEMENT / 20);
        assert_eq!(rows_per_statement(0), MAX_BINDS_PER_STATEMENT);
        assert_eq!(rows_per_statement(usize::MAX), 1);
    }
}
