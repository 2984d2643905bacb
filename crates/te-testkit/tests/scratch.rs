//! `ScratchDb` on the backend `TE_TEST_BACKEND` selects: a database that is
//! new and usable, and that is gone once removed or dropped.

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use te_core::{Backend, TaskExecutionDal};
use te_testkit::{ScratchDb, backend_from_env, postgres_server};

/// Where a scratch database goes on this backend: the test server, or
/// (no URL) a temporary directory.
async fn place() -> Option<String> {
    match backend_from_env() {
        Backend::Postgres => Some(
            postgres_server()
                .await
                .expect("a PostgreSQL server")
                .admin_url()
                .to_owned(),
        ),
        Backend::Sqlite => None,
    }
}

async fn scratch() -> ScratchDb {
    let place = place().await;
    tokio::task::spawn_blocking(move || ScratchDb::at(place.as_deref(), "te_scratch_test"))
        .await
        .unwrap()
        .expect("a scratch database")
}

/// Whether the scratch database `name` (PostgreSQL) or file `path` (SQLite) exists.
async fn exists(name: Option<String>, path: Option<std::path::PathBuf>) -> bool {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    match (name, path) {
        (Some(name), _) => {
            let admin = place().await.unwrap();
            tokio::task::spawn_blocking(move || {
                let mut conn = PgConnection::establish(&admin).unwrap();
                let count: Count =
                    diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
                        .bind::<Text, _>(name)
                        .get_result(&mut conn)
                        .unwrap();
                count.n == 1
            })
            .await
            .unwrap()
        }
        (None, Some(path)) => path.exists(),
        (None, None) => panic!("a scratch database is a PostgreSQL database or a SQLite file"),
    }
}

/// How many tables the database holds (a SQLite file not yet made holds none).
async fn tables(db: &ScratchDb) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let (url, sqlite) = (
        db.url().to_owned(),
        db.sqlite_path().map(|p| p.to_path_buf()),
    );
    tokio::task::spawn_blocking(move || match sqlite {
        Some(path) if !path.exists() => 0,
        Some(path) => {
            let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
            // The DAL's pool may still be closing its connections.
            conn.batch_execute("PRAGMA busy_timeout = 5000").unwrap();
            diesel::sql_query("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'")
                .get_result::<Count>(&mut conn)
                .unwrap()
                .n
        }
        None => {
            let mut conn = PgConnection::establish(&url).unwrap();
            diesel::sql_query("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")
                .get_result::<Count>(&mut conn)
                .unwrap()
                .n
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_scratch_database_is_new_usable_and_gone_once_removed() {
    let db = scratch().await;
    assert_eq!(db.backend(), backend_from_env());
    assert_eq!(tables(&db).await, 0, "a scratch database starts empty");
    let dal = TaskExecutionDal::connect(db.url()).await.unwrap();
    dal.run_migrations().await.unwrap();
    drop(dal);
    assert!(tables(&db).await > 0);
    let (name, path) = (
        db.postgres_name().map(str::to_owned),
        db.sqlite_path().map(std::path::Path::to_path_buf),
    );
    assert!(exists(name.clone(), path.clone()).await);
    tokio::task::spawn_blocking(move || db.remove())
        .await
        .unwrap()
        .unwrap();
    assert!(!exists(name, path).await);
}

#[tokio::test]
async fn a_dropped_scratch_database_is_removed_even_with_connections_open() {
    let db = scratch().await;
    let dal = TaskExecutionDal::connect(db.url()).await.unwrap();
    dal.run_migrations().await.unwrap();
    let (name, path) = (
        db.postgres_name().map(str::to_owned),
        db.sqlite_path().map(std::path::Path::to_path_buf),
    );
    drop(db);
    assert!(!exists(name, path).await);
    drop(dal);
}
