//! Finding a PostgreSQL server for tests: `DATABASE_URL`, a throwaway local
//! cluster, or a testcontainers container (its databases are made and
//! dropped by [`crate::scratch`]).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection};
use tokio::sync::OnceCell;

use crate::scratch;

/// A PostgreSQL server on which test databases are created.
#[derive(Debug)]
pub struct PostgresServer {
    admin_url: String,
    origin: &'static str,
    // Keeps a local cluster or a container alive for the test process.
    _keep: Keep,
}

#[derive(Debug)]
enum Keep {
    Nothing,
    Cluster(#[allow(dead_code)] tempfile::TempDir),
    #[cfg(feature = "testcontainers")]
    Container(
        #[allow(dead_code)] Box<testcontainers::ContainerAsync<testcontainers::GenericImage>>,
    ),
}

impl PostgresServer {
    /// A URL of a database on the server that may create other databases.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Where the server came from: `DATABASE_URL`, `local cluster` or `testcontainers`.
    pub fn origin(&self) -> &'static str {
        self.origin
    }

    /// Creates the empty database `name` and returns its URL.
    ///
    /// # Panics
    /// When the server refuses: a test must never pass without its database.
    pub async fn create_database(&self, name: &str) -> String {
        let (admin, database) = (self.admin_url.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || scratch::create_database(&admin, &database))
            .await
            .expect("create database task")
            .unwrap_or_else(|e| panic!("create a test database: {e}"));
        scratch::with_database(&self.admin_url, name)
    }
}

static SERVER: OnceCell<Result<PostgresServer, String>> = OnceCell::const_new();

/// The PostgreSQL server of this test process, found (or started) once:
/// `DATABASE_URL` if set, else a throwaway local cluster when `initdb` is
/// installed, else a testcontainers container when Docker runs. The error
/// says what was tried.
pub async fn postgres_server() -> Result<&'static PostgresServer, String> {
    SERVER
        .get_or_init(|| async { find_server().await })
        .await
        .as_ref()
        .map_err(Clone::clone)
}

async fn find_server() -> Result<PostgresServer, String> {
    let mut tried = Vec::new();
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let probe = url.clone();
            let check =
                tokio::task::spawn_blocking(move || PgConnection::establish(&probe).map(|_| ()))
                    .await
                    .map_err(|e| e.to_string())?;
            return match check {
                Ok(()) => Ok(PostgresServer {
                    admin_url: url,
                    origin: "DATABASE_URL",
                    _keep: Keep::Nothing,
                }),
                Err(e) => Err(format!("DATABASE_URL is set but cannot be reached: {e}")),
            };
        }
        Ok(_) => tried.push("DATABASE_URL is not a postgres:// URL".to_owned()),
        Err(_) => tried.push("DATABASE_URL is not set".to_owned()),
    }
    match tokio::task::spawn_blocking(start_local_cluster)
        .await
        .map_err(|e| e.to_string())?
    {
        Ok(server) => return Ok(server),
        Err(why) => tried.push(why),
    }
    #[cfg(feature = "testcontainers")]
    match start_container().await {
        Ok(server) => return Ok(server),
        Err(why) => tried.push(why),
    }
    #[cfg(not(feature = "testcontainers"))]
    tried.push("the `testcontainers` feature is off".to_owned());
    Err(tried.join("; "))
}

fn find_pg_bin(name: &str) -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Whether [`postgres_server`] can start a throwaway local cluster here: the
/// PostgreSQL server binaries (`initdb`, `postgres`) are installed and this
/// process does not run as root. The error says which is not so.
pub fn local_cluster_possible() -> Result<(), String> {
    local_cluster_binaries().map(drop)
}

/// The paths of `initdb` and `postgres`, when a local cluster can be started.
fn local_cluster_binaries() -> Result<(PathBuf, PathBuf), String> {
    let initdb = find_pg_bin("initdb")
        .ok_or("no `initdb` found (PostgreSQL server binaries are not installed)")?;
    let postgres = find_pg_bin("postgres").ok_or("no `postgres` binary found")?;
    if running_as_root() {
        return Err("a local cluster cannot be started as root".to_owned());
    }
    Ok((initdb, postgres))
}

/// Makes a cluster in a temporary directory with `initdb` and starts it on a
/// free port; a small shell watcher stops it when this process exits.
fn start_local_cluster() -> Result<PostgresServer, String> {
    let (initdb, postgres) = local_cluster_binaries()?;
    let dir = tempfile::Builder::new()
        .prefix("te-pg-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let data = dir.path().join("data");
    let status = Command::new(&initdb)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "-D",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("run initdb: {e}"))?;
    if !status.success() {
        return Err(format!("initdb failed ({status})"));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("find a free port: {e}"))?
        .port();
    spawn_watched_postgres(&postgres, &data, dir.path(), port)?;
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    wait_until_ready(&url, Duration::from_secs(30))?;
    Ok(PostgresServer {
        admin_url: url,
        origin: "local cluster",
        _keep: Keep::Cluster(dir),
    })
}

fn spawn_watched_postgres(
    postgres: &Path,
    data: &Path,
    socket_dir: &Path,
    port: u16,
) -> Result<(), String> {
    // The watcher's parent is this process: when it is gone, stop the server
    // and remove the cluster's directory (the process-wide server is never dropped).
    let script = r#"
"$0" -D "$1" -p "$2" -k "$3" -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 >"$3/postgres.log" 2>&1 &
server=$!
parent=$PPID
while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 1; done
kill -INT "$server" 2>/dev/null
wait "$server" 2>/dev/null
rm -rf "$3"
"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(postgres)
        .arg(data)
        .arg(port.to_string())
        .arg(socket_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("start postgres: {e}"))
}

fn wait_until_ready(url: &str, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match PgConnection::establish(url) {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() > timeout => {
                return Err(format!("PostgreSQL did not become ready: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[cfg(feature = "testcontainers")]
async fn start_container() -> Result<PostgresServer, String> {
    use testcontainers::core::{IntoContainerPort, WaitFor};
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{GenericImage, ImageExt};

    let container = GenericImage::new("postgres", "16-alpine")
        .with_exposed_port(5432.tcp())
        .with_wait_for(WaitFor::message_on_stderr(
            "database system is ready to accept connections",
        ))
        .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
        .start()
        .await
        .map_err(|e| format!("no Docker for testcontainers: {e}"))?;
    let host = container
        .get_host()
        .await
        .map_err(|e| format!("container host: {e}"))?;
    let port = container
        .get_host_port_ipv4(5432.tcp())
        .await
        .map_err(|e| format!("container port: {e}"))?;
    let url = format!("postgres://postgres@{host}:{port}/postgres");
    let probe = url.clone();
    tokio::task::spawn_blocking(move || wait_until_ready(&probe, Duration::from_secs(60)))
        .await
        .map_err(|e| e.to_string())??;
    Ok(PostgresServer {
        admin_url: url,
        origin: "testcontainers",
        _keep: Keep::Container(Box::new(container)),
    })
}
