//! The ground floor every `te` command stands on, importing no command:
//! opening the database (`db`), writing to stdout (`output`) and tables
//! (`table`), the one error type (`error`), the flags and value parsers
//! several commands share (`args`), one stale-claim recovery pass
//! (`recovery`, run by `te recover` and the demo), the demo's DAG workload
//! (`workload`, run by `te demo` and `te bench`'s `engine`), and a
//! poison-tolerant lock (`sync`).

pub(crate) mod args;
pub(crate) mod db;
pub(crate) mod error;
pub(crate) mod output;
pub(crate) mod recovery;
pub(crate) mod sync;
pub(crate) mod table;
pub(crate) mod workload;
