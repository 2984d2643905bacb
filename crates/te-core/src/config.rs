//! `DalConfig`, `Backend` and `Target`: which database a URL names, and how the pool behaves.

use std::fmt;
use std::time::Duration;

use crate::error::DalError;

/// The database engine behind a [`crate::TaskExecutionDal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL: many workers on many hosts share one database.
    Postgres,
    /// SQLite: one host, embedded, one file (or memory).
    Sqlite,
}

impl Backend {
    /// The backend's name in lower case: `"postgres"` or `"sqlite"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the connections go, as parsed from a URL. Its `Debug` shows a
/// PostgreSQL URL with any password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A PostgreSQL connection string (`postgres://…` or `postgresql://…`).
    Postgres(String),
    /// A SQLite database file path.
    SqliteFile(String),
    /// A private in-memory SQLite database (`sqlite::memory:`).
    SqliteMemory,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&redact_password(url))
                .finish(),
            Target::SqliteFile(path) => f.debug_tuple("SqliteFile").field(path).finish(),
            Target::SqliteMemory => f.write_str("SqliteMemory"),
        }
    }
}

impl Target {
    /// Parses a database URL.
    ///
    /// `postgres://` and `postgresql://` select PostgreSQL (the DAL's own
    /// query parameters, `pgbouncer` and `listen_url`, are removed from the
    /// connection string: see [`DalConfig`]); `sqlite://PATH`,
    /// `sqlite:PATH`, `sqlite::memory:` and a bare path ending in `.db`,
    /// `.sqlite` or `.sqlite3` select SQLite. Anything else is
    /// [`DalError::Config`] naming the scheme, never the rest of the URL.
    pub fn parse(url: &str) -> Result<Self, DalError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // The DAL's own parameters (`pgbouncer`, `listen_url`) never
            // reach libpq, which refuses parameters it does not know.
            let (clean, _) = crate::url_params::split(url)?;
            return Ok(Target::Postgres(clean));
        }
        if url == "sqlite::memory:" || url == "sqlite://:memory:" || url == ":memory:" {
            return Ok(Target::SqliteMemory);
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(DalError::Config(
                    "a sqlite URL needs a file path, e.g. sqlite://tasks.db".into(),
                ));
            }
            return Ok(Target::SqliteFile(path.to_owned()));
        }
        let lower = url.to_ascii_lowercase();
        if !url.contains("://")
            && [".db", ".sqlite", ".sqlite3"]
                .iter()
                .any(|ext| lower.ends_with(ext))
        {
            return Ok(Target::SqliteFile(url.to_owned()));
        }
        let scheme = match url.split_once("://") {
            Some((scheme, _)) => format!("unsupported database URL scheme `{scheme}://`"),
            None if url.is_empty() => "the database URL is empty".to_owned(),
            None => {
                "the database URL has no scheme (expected postgres://, postgresql:// or sqlite://)"
                    .to_owned()
            }
        };
        Err(DalError::Config(format!(
            "{scheme}; expected postgres://, postgresql://, sqlite://PATH, sqlite::memory: or a path ending in .db/.sqlite/.sqlite3"
        )))
    }

    /// The backend this target selects.
    pub fn backend(&self) -> Backend {
        match self {
            Target::Postgres(_) => Backend::Postgres,
            Target::SqliteFile(_) | Target::SqliteMemory => Backend::Sqlite,
        }
    }

    /// The database file of a [`Target::SqliteFile`] target, as the URL
    /// names it (relative paths stay relative); `None` for PostgreSQL and
    /// in-memory SQLite.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            Target::SqliteFile(path) => Some(std::path::Path::new(path)),
            Target::Postgres(_) | Target::SqliteMemory => None,
        }
    }

    /// For a SQLite file: whether it holds the DAL's tables, found without
    /// writing anything. The file is opened read-only (`mode=ro`) and no
    /// pragma is set, where connecting switches the file to WAL, which
    /// writes even to an empty file. `None` for PostgreSQL, in-memory
    /// SQLite, a missing file, or a file that cannot be read this way (such
    /// as a WAL database whose `-shm` file a read-only connection may not
    /// create): connect to learn more.
    pub fn sqlite_file_is_migrated(&self) -> Option<bool> {
        use diesel::sql_types::{BigInt, Text};
        use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};

        #[derive(QueryableByName)]
        struct Tables {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }

        let path = self.sqlite_path()?;
        if !path.is_file() {
            return None;
        }
        // A URI filename: `%`, `?` and `#` of the path are escaped.
        let mut uri = String::from("file:");
        for c in path.to_str()?.chars() {
            match c {
                '%' => uri.push_str("%25"),
                '?' => uri.push_str("%3f"),
                '#' => uri.push_str("%23"),
                other => uri.push(other),
            }
        }
        uri.push_str("?mode=ro");
        let mut conn = SqliteConnection::establish(&uri).ok()?;
        let tables: Tables = diesel::sql_query(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind::<Text, _>("task_executions")
        .get_result(&mut conn)
        .ok()?;
        Some(tables.n > 0)
    }

    /// A description safe to print: the URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Target::Postgres(url) => redact_password(url),
            Target::SqliteFile(path) => format!("sqlite://{path}"),
            Target::SqliteMemory => "sqlite::memory:".to_owned(),
        }
    }
}

/// What every password is replaced with.
const HIDDEN: &str = "***";

/// The connection string `url` with every password it holds replaced by
/// `***`, whatever its form:
///
/// - `scheme://user:password@host/db`, also when the password holds `/`,
///   `:` or `@` characters or is percent-encoded (everything between the
///   first `:` of the user information and the last `@` before the query);
/// - a `password=…` query parameter (`postgres://host/db?password=…`);
/// - `password=…` in a `key=value` connection string, quoted or not.
///
/// A URL without a password comes back unchanged.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_key_values(url);
    };
    // The user information ends at the last `@` before the query string.
    let query_at = rest.find('?').unwrap_or(rest.len());
    let (authority, query) = rest.split_at(query_at);
    let authority = match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _)) => format!("{user}:{HIDDEN}@{}", &authority[at + 1..]),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{}", redact_query(query))
}

/// `?a=b&password=…`: the value of every `password` parameter hidden.
fn redact_query(query: &str) -> String {
    let Some(params) = query.strip_prefix('?') else {
        return query.to_owned();
    };
    let params: Vec<String> = params
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if is_password_key(key) => format!("{key}={HIDDEN}"),
            _ => param.to_owned(),
        })
        .collect();
    format!("?{}", params.join("&"))
}

fn is_password_key(key: &str) -> bool {
    let key = key.trim();
    key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("pass")
}

/// `host=h password='x y' user=u`: the value of every `password` key hidden.
fn redact_key_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((key_end, value_start)) = next_password_value(rest) {
        out.push_str(&rest[..key_end]);
        out.push('=');
        out.push_str(HIDDEN);
        let value = &rest[value_start..];
        rest = &value[key_value_len(value)..];
    }
    out.push_str(rest);
    out
}

/// Where the next `password =` key ends and its value starts.
fn next_password_value(text: &str) -> Option<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let start = from + found;
        let key_end = start + "password".len();
        let before_ok = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
        let after = &text[key_end..];
        let spaces = after.len() - after.trim_start().len();
        if before_ok && after[spaces..].starts_with('=') {
            let value = &after[spaces + 1..];
            let value_spaces = value.len() - value.trim_start().len();
            return Some((key_end, key_end + spaces + 1 + value_spaces));
        }
        from = key_end;
    }
    None
}

/// The length of a `key=value` value: a quoted string with `\'` escapes, or
/// up to the next whitespace.
fn key_value_len(value: &str) -> usize {
    if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return i + 2,
                _ => {}
            }
        }
        return value.len();
    }
    value.find(char::is_whitespace).unwrap_or(value.len())
}

/// Every form in which the password of `url` could appear in a driver's
/// message: as written, percent-decoded, and the pieces a driver may cut it
/// into when it parses the URL differently (at `/`, `:`, `@`, `?`, `#`).
fn password_forms(url: &str) -> Vec<String> {
    let mut forms = Vec::new();
    let mut add = |raw: &str| {
        for piece in std::iter::once(raw).chain(raw.split(['/', ':', '@', '?', '#', '&'])) {
            for form in [piece.to_owned(), percent_decode(piece)] {
                if !form.is_empty() && !forms.contains(&form) {
                    forms.push(form);
                }
            }
        }
    };
    if let Some((_, rest)) = url.split_once("://") {
        let (authority, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
        if let Some(at) = authority.rfind('@')
            && let Some((_, password)) = authority[..at].split_once(':')
        {
            add(password);
        }
        for param in query.trim_start_matches('?').split('&') {
            if let Some((key, value)) = param.split_once('=')
                && is_password_key(key)
            {
                add(value);
            }
        }
    } else {
        let mut rest = url;
        while let Some((_, value_start)) = next_password_value(rest) {
            let value = &rest[value_start..];
            let len = key_value_len(value);
            add(value[..len].trim_matches('\''));
            rest = &value[len..];
        }
    }
    // Longest first, so that a piece never hides part of a longer form.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `message` (e.g. a driver's error about connecting to `url`) with the URL
/// and every form of its password replaced: see [`redact_password`]. A
/// password piece shorter than 4 characters is replaced only where the
/// message quotes it (`"pa"`), so that short pieces do not mangle the rest.
pub(crate) fn scrub_password(url: &str, message: &str) -> String {
    let mut text = message.replace(url, &redact_password(url));
    for form in password_forms(url) {
        if form.chars().count() >= 4 {
            text = text.replace(&form, HIDDEN);
        } else {
            for quote in ['"', '\''] {
                text = text.replace(
                    &format!("{quote}{form}{quote}"),
                    &format!("{quote}{HIDDEN}{quote}"),
                );
            }
        }
    }
    text
}

/// How to connect and how the connection pool behaves.
///
/// `DalConfig::new(url)` gives sensible defaults for the backend the URL
/// selects; every field can be changed before
/// [`crate::TaskExecutionDal::connect_with`].
///
/// Settings may also be given as query parameters of the URL, which take
/// precedence over the fields and never reach the driver: `pgbouncer=true`
/// ([`DalConfig::transaction_pooler`]), `listen_url=…`
/// ([`DalConfig::listen_url`], percent-encoded) for PostgreSQL,
/// `synchronous=normal|full` ([`DalConfig::synchronous`]) for SQLite. A
/// parameter of the other backend, or a value not listed, is
/// [`DalError::Config`] when connecting.
///
/// Its `Debug` shows the URLs with any password replaced by `***`.
#[derive(Clone)]
#[non_exhaustive]
pub struct DalConfig {
    /// The database URL (see [`Target::parse`]).
    pub url: String,
    /// Most connections the pool keeps open. `None`: 10 on PostgreSQL, 4 on a
    /// SQLite file, 1 for in-memory SQLite (each in-memory connection would
    /// otherwise see its own database).
    pub max_connections: Option<usize>,
    /// How long an operation waits for a free connection before
    /// [`DalError::Timeout`] naming `acquire_timeout`.
    pub acquire_timeout: Duration,
    /// How long making one new connection may take.
    pub connect_timeout: Duration,
    /// SQLite only: how long a write waits in all in this handle's queue of
    /// writes and for the database's write lock (which another process may
    /// hold), and how long any statement waits for a lock, before
    /// [`DalError::Timeout`] naming `sqlite_busy_timeout`.
    pub sqlite_busy_timeout: Duration,
    /// PostgreSQL only: the server is reached through a connection pooler in
    /// transaction mode (pgbouncer, pgcat, Supavisor), which hands each
    /// transaction to whichever server connection is free. Every statement
    /// is then sent unnamed, with its parameters, in one round trip (no
    /// named prepared statement, which would exist on one server connection
    /// only), no session state is relied on between transactions, and
    /// [`crate::TaskExecutionDal`]'s wake-ups `LISTEN` on
    /// [`DalConfig::listen_url`] or, without it, poll (every 250 ms) for new
    /// audit events. Costs: each statement is parsed and planned on every
    /// call. Default `false`; `pgbouncer=true` in the URL sets it.
    pub transaction_pooler: bool,
    /// PostgreSQL only: a direct connection to the server (not through a
    /// pooler) on which wake-ups `LISTEN`, for a handle whose URL goes
    /// through a transaction-mode pooler. `listen_url=…` (percent-encoded)
    /// in the URL sets it. Its `Debug` hides any password.
    pub listen_url: Option<String>,
    /// SQLite only: what a commit waits for (see [`Synchronous`]). Default
    /// [`Synchronous::Normal`]; `synchronous=full` in the URL sets
    /// [`Synchronous::Full`].
    pub synchronous: Synchronous,
}

/// SQLite's `synchronous` setting (the database runs in WAL mode): what a
/// commit waits for before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `PRAGMA synchronous = NORMAL`, the default: a commit is written to the
    /// WAL file, which is flushed to disk at checkpoints. A process that is
    /// killed loses nothing acknowledged; an operating-system crash or a
    /// power cut may lose the last commits (never corrupting the database).
    #[default]
    Normal,
    /// `PRAGMA synchronous = FULL`: every commit is flushed to disk before it
    /// is acknowledged, so nothing acknowledged is lost even to a power cut;
    /// each commit waits for the disk (`te bench` measures the cost).
    Full,
}

impl Synchronous {
    /// The value of SQLite's `PRAGMA synchronous`: `"NORMAL"` or `"FULL"`.
    pub fn as_pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

impl fmt::Debug for DalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DalConfig")
            .field("url", &redact_password(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("sqlite_busy_timeout", &self.sqlite_busy_timeout)
            .field("transaction_pooler", &self.transaction_pooler)
            .field(
                "listen_url",
                &self.listen_url.as_deref().map(redact_password),
            )
            .field("synchronous", &self.synchronous)
            .finish()
    }
}

impl DalConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        DalConfig {
            url: url.into(),
            max_connections: None,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(30),
            transaction_pooler: false,
            listen_url: None,
            synchronous: Synchronous::Normal,
        }
    }

    /// Sets [`DalConfig::transaction_pooler`].
    pub fn transaction_pooler(mut self, behind_pooler: bool) -> Self {
        self.transaction_pooler = behind_pooler;
        self
    }

    /// Sets [`DalConfig::listen_url`].
    pub fn listen_url(mut self, url: impl Into<String>) -> Self {
        self.listen_url = Some(url.into());
        self
    }

    /// Sets [`DalConfig::synchronous`].
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets [`DalConfig::max_connections`].
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// Sets [`DalConfig::acquire_timeout`].
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets [`DalConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`DalConfig::sqlite_busy_timeout`].
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.sqlite_busy_timeout = timeout;
        self
    }

    pub(crate) fn pool_size(&self, target: &Target) -> usize {
        match (target, self.max_connections) {
            (Target::SqliteMemory, _) => 1,
            (_, Some(n)) => n.max(1),
            (Target::Postgres(_), None) => 10,
            (Target::SqliteFile(_), None) => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_backends() {
        assert_eq!(
            Target::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            Target::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            Target::parse("sqlite://tasks.db").unwrap(),
            Target::SqliteFile("tasks.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:///tmp/x.db").unwrap(),
            Target::SqliteFile("/tmp/x.db".into())
        );
        assert_eq!(
            Target::parse("sqlite::memory:").unwrap(),
            Target::SqliteMemory
        );
        assert_eq!(
            Target::parse("data/t.sqlite3").unwrap(),
            Target::SqliteFile("data/t.sqlite3".into())
        );
    }

    #[test]
    fn only_sqlite_files_have_a_path() {
        let path = |url: &str| {
            Target::parse(url)
                .unwrap()
                .sqlite_path()
                .map(std::path::Path::to_path_buf)
        };
        assert_eq!(path("sqlite://te-demo.db"), Some("te-demo.db".into()));
        assert_eq!(path("sqlite:///tmp/x.db"), Some("/tmp/x.db".into()));
        assert_eq!(path("sqlite:a.db?mode=rwc"), Some("a.db".into()));
        assert_eq!(path("data/t.sqlite3"), Some("data/t.sqlite3".into()));
        assert_eq!(path("sqlite::memory:"), None);
        assert_eq!(path("sqlite://:memory:"), None);
        assert_eq!(path("postgres://u@h/x.db"), None);
    }

    #[test]
    fn unknown_scheme_names_scheme_not_password() {
        let err = Target::parse("mysql://root:hunter2@db/x").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("mysql://"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(matches!(err, DalError::Config(_)));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_password("postgres://h/db"), "postgres://h/db");
    }

    /// Every form of password, with the secret it must hide and the parts of
    /// the URL that must stay readable.
    const FORMS: [(&str, &str, &str); 7] = [
        (
            "postgres://u:s3cr3t@h:5432/db",
            "s3cr3t",
            "postgres://u:***@h:5432/db",
        ),
        ("postgres://u:pa/ss@h/db", "pa/ss", "postgres://u:***@h/db"),
        (
            "postgres://u:p@ss:w/rd@h/db?sslmode=disable",
            "p@ss:w/rd",
            "postgres://u:***@h/db?sslmode=disable",
        ),
        (
            "postgres://u:p%2Fs%40ss@h/db",
            "p%2Fs%40ss",
            "postgres://u:***@h/db",
        ),
        (
            "postgres://h/db?user=u&password=s3cr3t&sslmode=disable",
            "s3cr3t",
            "postgres://h/db?user=u&password=***&sslmode=disable",
        ),
        (
            "host=h password=s3cr3t user=u",
            "s3cr3t",
            "host=h password=*** user=u",
        ),
        (
            "host=h password = 'se cr\\'et' user=u",
            "cr\\'et",
            "host=h password=*** user=u",
        ),
    ];

    #[test]
    fn every_form_of_password_is_redacted() {
        for (url, secret, redacted) in FORMS {
            assert_eq!(redact_password(url), redacted, "{url}");
            assert!(!redact_password(url).contains(secret), "{url}");
        }
    }

    #[test]
    fn debug_shows_no_password() {
        for (url, secret, _) in FORMS {
            let config = DalConfig::new(url);
            let debug = format!("{config:?}");
            assert!(!debug.contains(secret), "{debug}");
            assert!(debug.contains("DalConfig"), "{debug}");
            if let Ok(target) = Target::parse(url) {
                let debug = format!("{target:?}");
                assert!(!debug.contains(secret), "{debug}");
                assert!(!target.redacted().contains(secret));
            }
        }
    }

    #[test]
    fn driver_messages_are_scrubbed() {
        // What libpq says about these URLs: it can cut a password holding
        // `/` at the slash, and decode a percent-encoded one.
        let cases = [
            (
                "postgres://u:pa/ss@h/db",
                r#"invalid integer value "pa" for connection option "port""#,
                "pa",
            ),
            (
                "postgres://u:longpass/word@h/db",
                "could not translate host name \"longpass\" to address",
                "longpass",
            ),
            (
                "postgres://u:p%2Fs%40ssword@h/db",
                "password authentication failed: p/s@ssword",
                "p/s@ssword",
            ),
            (
                "postgres://h/db?password=s3cr3t",
                "cannot connect to postgres://h/db?password=s3cr3t",
                "s3cr3t",
            ),
        ];
        for (url, message, secret) in cases {
            let scrubbed = scrub_password(url, message);
            assert!(!scrubbed.contains(&format!("\"{secret}\"")), "{scrubbed}");
            assert!(!scrubbed.contains(secret) || secret.len() < 4, "{scrubbed}");
            assert!(scrubbed.contains("***"), "{scrubbed}");
        }
        // Unrelated text is left alone.
        assert_eq!(
            scrub_password("postgres://u:pa/ss@h/db", "port 5432 failed"),
            "port 5432 failed"
        );
    }
}
