//! Store errors in Ferry's own words, the same on every backend. Each
//! backend sorts its driver's errors into a [`Failure`] (by SQLSTATE or
//! SQLite result code); the message a caller sees is written here, and the
//! driver's text (which names tables, constraints and SQL) only reaches the
//! log.

use ferry_core::StoreError;
use sqlx::migrate::MigrateError;

/// What went wrong, as a backend reads its driver's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure<'a> {
    /// A row with the same identity exists in `table` (when the driver
    /// names it).
    Duplicate(Option<&'a str>),
    /// A row refers to another that does not exist.
    MissingReference,
    /// Any other rule of the schema (not null, check).
    Rule,
    /// The disk or quota is full.
    Full,
    /// Stored data is damaged or does not decode.
    Corrupt,
    /// Storage cannot serve now (connection, locks, shutdown, anything else).
    Unavailable,
    /// The external queue (Redis) cannot serve now.
    QueueUnavailable,
}

/// Sorts a driver error: `database` reads an error the database server
/// answered (by SQLSTATE or result code); a value that does not decode is
/// corrupt data; anything else (I/O, pool, protocol) is storage that cannot
/// serve now.
pub(crate) fn classify<'e>(
    e: &'e sqlx::Error,
    database: impl FnOnce(&'e dyn sqlx::error::DatabaseError) -> Failure<'e>,
) -> Failure<'e> {
    match e {
        sqlx::Error::Database(db) => database(db.as_ref()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => Failure::Corrupt,
        _ => Failure::Unavailable,
    }
}

impl Failure<'_> {
    /// The port's error for this failure; `cause` (the driver's error) is
    /// logged, never returned.
    pub(crate) fn into_error(self, cause: &dyn std::fmt::Display) -> StoreError {
        match self {
            Failure::Duplicate(_) | Failure::MissingReference | Failure::Rule => {
                tracing::debug!(error = %cause, "A write broke a rule of the store.");
            }
            Failure::Full | Failure::Corrupt | Failure::Unavailable | Failure::QueueUnavailable => {
                tracing::warn!(error = %cause, "The store failed.");
            }
        }
        match self {
            Failure::Duplicate(table) => {
                StoreError::Conflict(format!("{} already exists", duplicate_of(table)))
            }
            Failure::MissingReference => {
                StoreError::Conflict("it refers to something that does not exist".into())
            }
            Failure::Rule => StoreError::Conflict("it breaks a rule of the stored data".into()),
            Failure::Full => StoreError::Full("no space left for Ferry's data".into()),
            Failure::Corrupt => StoreError::Corrupt("Ferry's data cannot be read".into()),
            Failure::Unavailable => {
                StoreError::Unavailable("Ferry's database cannot serve this now".into())
            }
            Failure::QueueUnavailable => {
                StoreError::Unavailable("Ferry's queue cannot serve this now".into())
            }
        }
    }
}

/// Maps a failed migration: a schema this Ferry does not know is
/// `Corrupt` (an operator must act), a failed statement is mapped by the
/// backend's `db_error`, anything else is `Unavailable`.
pub(crate) fn migrate_error(
    e: MigrateError,
    db_error: fn(sqlx::Error) -> StoreError,
) -> StoreError {
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => db_error(e),
        e @ (MigrateError::VersionMissing(_)
        | MigrateError::VersionMismatch(_)
        | MigrateError::VersionNotPresent(_)
        | MigrateError::VersionTooOld(..)
        | MigrateError::VersionTooNew(..)
        | MigrateError::Dirty(_)) => {
            StoreError::Corrupt(format!("database schema does not match this Ferry: {e}"))
        }
        other => StoreError::Unavailable(format!("migrations failed: {other}")),
    }
}

/// What a uniqueness rule of `table` protects, as the caller knows it.
fn duplicate_of(table: Option<&str>) -> &'static str {
    match table {
        Some("orgs") => "an organization with this id",
        Some("api_keys") => "an API key with this id or secret",
        Some("destinations") => "a destination with this id",
        Some("sources") => "a source with this id",
        Some("events") => "an event with this id",
        Some("deliveries") => "a delivery with this id",
        Some("exports") => "an export with this id, or for this run of its schedule,",
        Some("export_schedules") => "an export schedule with this id or name",
        _ => "a record with this id",
    }
}

#[cfg(test)]
mod tests {
    use super::Failure;
    use ferry_core::StoreError;

    #[test]
    fn messages_name_what_exists_never_the_driver_text() {
        let error =
            Failure::Duplicate(Some("destinations")).into_error(&"UNIQUE constraint failed");
        assert!(
            matches!(&error, StoreError::Conflict(m) if m == "a destination with this id already exists"),
            "{error:?}"
        );
        let error = Failure::Unavailable.into_error(&"database is locked");
        assert!(!error.to_string().contains("locked"), "{error}");
    }
}
