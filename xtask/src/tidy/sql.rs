//! The SQL-catalogue rule: SQL written as text lives in a crate's `sql`
//! module (`src/sql.rs` or `src/**/sql/*.rs`), where each statement carries
//! its reason; everywhere else a query is diesel's DSL.
//!
//! A file breaks the rule when its code (comments and `#[cfg(test)]`
//! modules left out) calls `sql_query`, `sql::<…>`, `batch_execute` or
//! `push_sql`, or holds a string literal that reads as SQL.

/// Whether `path` (relative to the workspace root) is a catalogue file.
pub(crate) fn is_catalogue(path: &str) -> bool {
    path.ends_with("/sql.rs") || path.contains("/sql/")
}

/// The first line of `text` that writes SQL as text, with its number.
pub(crate) fn first_sql(text: &str) -> Option<(usize, String)> {
    let mut in_tests = false;
    let mut test_indent = 0;
    let mut in_string = false;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((number, line)) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        if in_tests {
            if indent == test_indent && line.trim() == "}" {
                in_tests = false;
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]"
            && lines.peek().is_some_and(|(_, next)| {
                next.trim_start().starts_with("mod ") && next.contains('{')
            })
        {
            in_tests = true;
            test_indent = indent;
            lines.next();
            continue;
        }
        if !in_string && trimmed.starts_with("//") {
            continue;
        }
        if !in_string && calls_sql(line) {
            return Some((number + 1, trimmed.to_owned()));
        }
        // The text inside string literals on this line (a literal may span
        // lines).
        let mut literal = String::new();
        let mut escaped = false;
        for c in line.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                    continue;
                }
                literal.push(c);
            } else if c == '"' {
                in_string = true;
                literal.push(' ');
            }
        }
        if reads_as_sql(&literal) {
            return Some((number + 1, trimmed.to_owned()));
        }
    }
    None
}

/// Whether `line` calls one of diesel's ways to run SQL text: `sql_query(`,
/// `sql::<` (not `from_sql::<`), `batch_execute(`, `push_sql(`.
fn calls_sql(line: &str) -> bool {
    ["sql_query(", "sql::<", "batch_execute(", "push_sql("]
        .iter()
        .any(|call| {
            line.match_indices(call).any(|(at, _)| {
                !line[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
}

/// Whether a string literal's text reads as SQL: a statement's opening
/// keywords, in capitals as the project writes SQL.
fn reads_as_sql(text: &str) -> bool {
    const OPENINGS: &[&str] = &[
        "SELECT ",
        "INSERT INTO",
        "DELETE FROM",
        "UPDATE task_executions",
        "UPDATE pipeline_executions",
        "WITH ",
        "PRAGMA ",
        "LISTEN ",
        "NOTIFY ",
        "CREATE ",
        "DROP ",
        "ANALYZE",
        "EXPLAIN",
        "BEGIN IMMEDIATE",
        " RETURNING ",
        " WHERE ",
    ];
    OPENINGS.iter().any(|opening| text.contains(opening))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_in_code_is_found_and_prose_is_not() {
        assert_eq!(
            first_sql("//! x\nlet q = \"SELECT 1\";\n").map(|(n, _)| n),
            Some(2)
        );
        assert_eq!(
            first_sql("//! x\nconst Q: &str = \"a \\\n   WHERE b\";\n").map(|(n, _)| n),
            Some(3)
        );
        assert_eq!(
            first_sql("//! x\nconn.batch_execute(Q)?;\n").map(|(n, _)| n),
            Some(2)
        );
        assert_eq!(
            first_sql("//! x\n/// SELECT it\nlet m = \"selected\";\n"),
            None
        );
        assert_eq!(
            first_sql("//! x\n#[cfg(test)]\nmod tests {\n    const Q: &str = \"SELECT 1\";\n}\n"),
            None
        );
    }

    #[test]
    fn catalogue_files_are_recognised() {
        assert!(is_catalogue("crates/te-crud/src/sql.rs"));
        assert!(is_catalogue("crates/te-core/src/data/sql/claim.rs"));
        assert!(!is_catalogue("crates/te-claiming/src/claim.rs"));
    }
}
