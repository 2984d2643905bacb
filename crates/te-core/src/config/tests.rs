//! Tests of URL parsing, password redaction and the configuration's `Debug`.

use super::dal_config::DalConfig;
use super::redact::{redact_password, scrub_password};
use super::target::{Backend, Target};
use crate::ground::error::DalError;

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
