//! Whether a PostgreSQL server can be had for the PostgreSQL test pass, by the
//! same rules te-testkit follows (DATABASE_URL, local binaries, Docker); the
//! local cluster's rule is te-testkit's own.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where PostgreSQL comes from, or why none can be had.
pub(crate) fn availability() -> Result<String, String> {
    let mut tried = Vec::new();
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let (host, port) = host_port(&url);
            return match reachable(&host, port) {
                Ok(()) => Ok(format!("DATABASE_URL ({host}:{port})")),
                Err(e) => Err(format!(
                    "DATABASE_URL points at {host}:{port}, which is unreachable: {e}"
                )),
            };
        }
        Ok(_) => tried.push("DATABASE_URL is not a postgres:// URL".to_owned()),
        Err(_) => tried.push("DATABASE_URL is not set".to_owned()),
    }
    match te_testkit::local_cluster_possible() {
        Ok(()) => return Ok("a throwaway local cluster (initdb)".into()),
        Err(why) => tried.push(why),
    }
    if docker_running() {
        return Ok("a testcontainers container (Docker)".into());
    }
    tried.push("no Docker engine".to_owned());
    Err(tried.join("; "))
}

fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hostport = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => (host.to_owned(), port.parse().unwrap_or(5432)),
        _ if hostport.is_empty() => ("localhost".to_owned(), 5432),
        _ => (hostport.to_owned(), 5432),
    }
}

pub(crate) fn reachable(host: &str, port: u16) -> Result<(), String> {
    let addrs = (host, port).to_socket_addrs().map_err(|e| e.to_string())?;
    let mut last = "no address".to_owned();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

fn docker_running() -> bool {
    Path::new("/var/run/docker.sock").exists()
        && Command::new("docker")
            .arg("info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn host_and_port_from_urls() {
        assert_eq!(host_port("postgres://u:p@db:6543/x"), ("db".into(), 6543));
        assert_eq!(
            host_port("postgres://u@127.0.0.1/x"),
            ("127.0.0.1".into(), 5432)
        );
        assert_eq!(host_port("postgresql://h"), ("h".into(), 5432));
    }
}
