//! The DAL's own settings in a database URL's query string (`pgbouncer`,
//! `listen_url`, `synchronous`): read into a [`DalConfig`] and removed from
//! the URL before it reaches the driver, which would refuse them.

use crate::config::redact::percent_decode;
use crate::config::{DalConfig, Synchronous};
use crate::ground::error::DalError;

/// `pgbouncer=true`: the PostgreSQL server is reached through a
/// transaction-mode pooler (see [`DalConfig::transaction_pooler`]).
const PGBOUNCER: &str = "pgbouncer";
/// `listen_url=…` (percent-encoded): the direct connection for wake-ups
/// (see [`DalConfig::listen_url`]).
const LISTEN_URL: &str = "listen_url";
/// `synchronous=normal|full`: SQLite's durability (see [`DalConfig::synchronous`]).
const SYNCHRONOUS: &str = "synchronous";

/// The DAL's settings a URL holds; `None` where it does not name one.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct UrlSettings {
    pub(crate) pgbouncer: Option<bool>,
    pub(crate) listen_url: Option<String>,
    pub(crate) synchronous: Option<Synchronous>,
}

impl UrlSettings {
    fn is_empty(&self) -> bool {
        *self == UrlSettings::default()
    }
}

/// Splits `url` into the URL without the DAL's own query parameters, and
/// those parameters. Every other parameter stays as it was, in its place.
/// A value the DAL does not understand is [`DalError::Config`] naming the
/// parameter (and never the rest of the URL, which may hold a password).
pub(crate) fn split(url: &str) -> Result<(String, UrlSettings), DalError> {
    let mut settings = UrlSettings::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), settings));
    };
    let mut kept = Vec::new();
    for param in query.split('&') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key {
            PGBOUNCER => {
                settings.pgbouncer = Some(match value.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => return Err(bad_value(PGBOUNCER, "true or false", value)),
                })
            }
            LISTEN_URL => {
                let listen = percent_decode(value);
                if !(listen.starts_with("postgres://") || listen.starts_with("postgresql://")) {
                    return Err(DalError::Config(format!(
                        "`{LISTEN_URL}` must be a percent-encoded postgres:// URL"
                    )));
                }
                settings.listen_url = Some(listen);
            }
            SYNCHRONOUS => {
                settings.synchronous = Some(match value.to_ascii_lowercase().as_str() {
                    "normal" => Synchronous::Normal,
                    "full" => Synchronous::Full,
                    _ => return Err(bad_value(SYNCHRONOUS, "normal or full", value)),
                })
            }
            _ => kept.push(param),
        }
    }
    let clean = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((clean, settings))
}

fn bad_value(key: &str, expected: &str, value: &str) -> DalError {
    // The value is the DAL's own setting, never a secret: safe to quote.
    DalError::Config(format!(
        "URL parameter `{key}` must be {expected}, got `{value}`"
    ))
}

impl DalConfig {
    /// This configuration with the settings its URL names applied over its
    /// fields (a setting in the URL takes precedence), and the URL without
    /// them. A PostgreSQL setting in a SQLite URL, or the reverse, is
    /// [`DalError::Config`].
    pub(crate) fn resolved(mut self) -> Result<DalConfig, DalError> {
        let (clean, settings) = split(&self.url)?;
        if settings.is_empty() {
            return Ok(self);
        }
        let postgres = clean.starts_with("postgres://") || clean.starts_with("postgresql://");
        let misplaced = if postgres {
            settings.synchronous.map(|_| SYNCHRONOUS)
        } else if settings.pgbouncer.is_some() {
            Some(PGBOUNCER)
        } else {
            settings.listen_url.as_ref().map(|_| LISTEN_URL)
        };
        if let Some(key) = misplaced {
            let (applies, other) = if postgres {
                ("SQLite", "a PostgreSQL")
            } else {
                ("PostgreSQL", "a SQLite")
            };
            return Err(DalError::Config(format!(
                "URL parameter `{key}` applies to {applies} only, not to {other} URL"
            )));
        }
        if let Some(pooler) = settings.pgbouncer {
            self.transaction_pooler = pooler;
        }
        if let Some(listen) = settings.listen_url {
            self.listen_url = Some(listen);
        }
        if let Some(synchronous) = settings.synchronous {
            self.synchronous = synchronous;
        }
        self.url = clean;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dal_parameters_are_taken_out_and_the_others_kept_in_place() {
        let (clean, settings) =
            split("postgres://u@h:6432/db?sslmode=disable&pgbouncer=true&application_name=w")
                .unwrap();
        assert_eq!(
            clean,
            "postgres://u@h:6432/db?sslmode=disable&application_name=w"
        );
        assert_eq!(settings.pgbouncer, Some(true));
        let (clean, settings) = split(
            "postgres://u@h:6432/db?pgbouncer=true&listen_url=postgres%3A%2F%2Fu%40h%3A5432%2Fdb",
        )
        .unwrap();
        assert_eq!(clean, "postgres://u@h:6432/db");
        assert_eq!(
            settings.listen_url.as_deref(),
            Some("postgres://u@h:5432/db")
        );
        let (clean, settings) = split("sqlite://tasks.db?synchronous=FULL").unwrap();
        assert_eq!(clean, "sqlite://tasks.db");
        assert_eq!(settings.synchronous, Some(Synchronous::Full));
        let (clean, settings) = split("postgres://u@h/db").unwrap();
        assert_eq!(
            (clean.as_str(), settings),
            ("postgres://u@h/db", UrlSettings::default())
        );
    }

    #[test]
    fn bad_values_are_refused_without_the_rest_of_the_url() {
        for url in [
            "postgres://u:hunter2@h/db?pgbouncer=maybe",
            "postgres://u:hunter2@h/db?listen_url=mysql%3A%2F%2Fhunter2",
            "sqlite://x.db?synchronous=extra",
        ] {
            let err = split(url).unwrap_err();
            assert!(matches!(err, DalError::Config(_)), "{url}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn url_settings_take_precedence_and_must_fit_the_backend() {
        let config = DalConfig::new("postgres://u@h/db?pgbouncer=true")
            .resolved()
            .unwrap();
        assert!(config.transaction_pooler);
        assert_eq!(config.url, "postgres://u@h/db");
        let config = DalConfig::new("postgres://u@h/db?pgbouncer=false")
            .transaction_pooler(true)
            .resolved()
            .unwrap();
        assert!(!config.transaction_pooler);
        let config = DalConfig::new("sqlite://t.db?synchronous=full")
            .resolved()
            .unwrap();
        assert_eq!(config.synchronous, Synchronous::Full);
        for url in [
            "sqlite://t.db?pgbouncer=true",
            "postgres://u@h/db?synchronous=full",
            "sqlite://t.db?listen_url=postgres%3A%2F%2Fh%2Fdb",
        ] {
            let err = DalConfig::new(url).resolved().unwrap_err();
            assert!(err.to_string().contains("applies to"), "{err}");
        }
    }
}
