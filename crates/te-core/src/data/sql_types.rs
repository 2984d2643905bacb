//! Custom SQL types that let one diesel schema serve both backends.
//!
//! | type | PostgreSQL | SQLite | Rust |
//! |---|---|---|---|
//! | [`DbUuid`] | `uuid` | 16-byte `BLOB` | [`uuid::Uuid`] |
//! | [`UtcTimestamp`] | `timestamptz` | `INTEGER` microseconds since the Unix epoch (orders as time does) | `DateTime<Utc>` |
//! | [`DbJson`] | `jsonb` | `TEXT` | [`serde_json::Value`] |

use chrono::{DateTime, TimeZone, Utc};
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::query_builder::QueryId;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{HasSqlType, SqlType, Text};
use diesel::sqlite::Sqlite;
use serde_json::Value;
use uuid::Uuid;

use crate::data::any_connection::MultiBackend;
use crate::ground::status::{EventType, PipelineStatus, SubStatus, TaskStatus};

/// A UUID: native `uuid` on PostgreSQL, a 16-byte blob on SQLite.
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Binary"))]
pub struct DbUuid;

/// A UTC instant with microsecond precision: `timestamptz` on PostgreSQL,
/// integer microseconds since the Unix epoch on SQLite.
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Long"))]
pub struct UtcTimestamp;

/// A JSON document: `jsonb` on PostgreSQL, text on SQLite.
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(postgres_type(oid = 3802, array_oid = 3807))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbJson;

/// The impls the generated `MultiBackend` needs for a custom SQL type: they
/// forward to the per-backend impls below.
macro_rules! multi_backend_type {
    ($sql_type:ident, $rust_type:ty) => {
        impl HasSqlType<$sql_type> for MultiBackend {
            fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
                MultiBackend::lookup_sql_type::<$sql_type>(lookup)
            }
        }

        impl FromSql<$sql_type, MultiBackend> for $rust_type {
            fn from_sql(
                bytes: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
            ) -> deserialize::Result<Self> {
                bytes.from_sql::<Self, $sql_type>()
            }
        }

        impl ToSql<$sql_type, MultiBackend> for $rust_type {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
                out.set_value(($sql_type, self));
                Ok(IsNull::No)
            }
        }
    };
}

/// PostgreSQL has a native type for each custom SQL type: its impls forward
/// to diesel's impls for that type (`$pg_type`).
macro_rules! postgres_native {
    ($sql_type:ident, $rust_type:ty, $pg_type:ty) => {
        impl ToSql<$sql_type, Pg> for $rust_type {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <$rust_type as ToSql<$pg_type, Pg>>::to_sql(self, out)
            }
        }

        impl FromSql<$sql_type, Pg> for $rust_type {
            fn from_sql(
                bytes: <Pg as diesel::backend::Backend>::RawValue<'_>,
            ) -> deserialize::Result<Self> {
                <$rust_type as FromSql<$pg_type, Pg>>::from_sql(bytes)
            }
        }
    };
}

multi_backend_type!(DbUuid, Uuid);
multi_backend_type!(UtcTimestamp, DateTime<Utc>);
multi_backend_type!(DbJson, Value);

// --- UUID ---------------------------------------------------------------

postgres_native!(DbUuid, Uuid, diesel::sql_types::Uuid);

impl ToSql<DbUuid, Sqlite> for Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.as_bytes().as_slice());
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, Sqlite> for Uuid {
    fn from_sql(
        bytes: <Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        let raw = <Vec<u8> as FromSql<diesel::sql_types::Binary, Sqlite>>::from_sql(bytes)?;
        Ok(Uuid::from_slice(&raw)?)
    }
}

// --- timestamps ---------------------------------------------------------

postgres_native!(UtcTimestamp, DateTime<Utc>, diesel::sql_types::Timestamptz);

impl ToSql<UtcTimestamp, Sqlite> for DateTime<Utc> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.timestamp_micros());
        Ok(IsNull::No)
    }
}

impl FromSql<UtcTimestamp, Sqlite> for DateTime<Utc> {
    fn from_sql(
        bytes: <Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        let micros = <i64 as FromSql<diesel::sql_types::BigInt, Sqlite>>::from_sql(bytes)?;
        Utc.timestamp_micros(micros)
            .single()
            .ok_or_else(|| format!("timestamp out of range: {micros} µs").into())
    }
}

// --- JSON ---------------------------------------------------------------

postgres_native!(DbJson, Value, diesel::sql_types::Jsonb);

impl ToSql<DbJson, Sqlite> for Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(serde_json::to_string(self)?);
        Ok(IsNull::No)
    }
}

impl FromSql<DbJson, Sqlite> for Value {
    fn from_sql(
        bytes: <Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(bytes)?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// The diesel `Text` conversions of an enum stored as its variant names
/// (see `ground::status`), on each backend and on `MultiBackend`.
macro_rules! text_enum_sql {
    ($($name:ident),+) => {$(
    impl ToSql<Text, MultiBackend> for $name {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
            out.set_value((Text, self.as_str()));
            Ok(IsNull::No)
        }
    }

    impl ToSql<Text, diesel::pg::Pg> for $name {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, diesel::pg::Pg>) -> serialize::Result {
            <str as ToSql<Text, diesel::pg::Pg>>::to_sql(self.as_str(), out)
        }
    }

    impl ToSql<Text, diesel::sqlite::Sqlite> for $name {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, diesel::sqlite::Sqlite>) -> serialize::Result {
            <str as ToSql<Text, diesel::sqlite::Sqlite>>::to_sql(self.as_str(), out)
        }
    }

    impl FromSql<Text, MultiBackend> for $name {
        fn from_sql(
            bytes: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
        ) -> deserialize::Result<Self> {
            let text = bytes.from_sql::<String, Text>()?;
            Ok(text.parse::<$name>()?)
        }
    }

    impl FromSql<Text, diesel::pg::Pg> for $name {
        fn from_sql(bytes: diesel::pg::PgValue<'_>) -> deserialize::Result<Self> {
            let text = <String as FromSql<Text, diesel::pg::Pg>>::from_sql(bytes)?;
            Ok(text.parse::<$name>()?)
        }
    }

    impl FromSql<Text, diesel::sqlite::Sqlite> for $name {
        fn from_sql(
            bytes: <diesel::sqlite::Sqlite as diesel::backend::Backend>::RawValue<'_>,
        ) -> deserialize::Result<Self> {
            let text = <String as FromSql<Text, diesel::sqlite::Sqlite>>::from_sql(bytes)?;
            Ok(text.parse::<$name>()?)
        }
    }
    )+};
}

text_enum_sql!(TaskStatus, PipelineStatus, SubStatus, EventType);
