//! The handle floor: connections, the pool, migrations, SQLite's group
//! commit, wake-ups and the [`TaskExecutionDal`](dal::TaskExecutionDal)
//! handle that owns them all. It builds on the ground, data and config
//! floors.

pub(crate) mod connection;
pub(crate) mod dal;
pub(crate) mod file_identity;
pub(crate) mod group_commit;
pub(crate) mod migrations;
pub(crate) mod pool;
pub(crate) mod signals;
pub(crate) mod wakeup;
