use sea_orm::{DbErr, RuntimeErr, SqlErr};

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything a store operation can fail with. The GraphQL layer maps each
/// variant to one `extensions.code`; `Database` is the only one whose text
/// stays on the server.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found: {id}")]
    NotFound { what: &'static str, id: String },
    #[error("invalid {field}: {message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A subscriber's cursor is older than what the event log retains:
    /// events after it may be gone.
    #[error("the events after this cursor are no longer retained: reload, then subscribe without `after`")]
    EventsExpired,
    /// The request's row budget (`EXECSTORE_MAX_NODES`) would be exceeded.
    #[error("this request would load more than {limit} executions")]
    TooManyRows { limit: i64 },
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    #[error("database error")]
    Database(#[source] DbErr),
}

impl StoreError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            message: message.into(),
        }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            id: id.into(),
        }
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            StoreError::Unavailable(err)
        } else {
            StoreError::Database(err)
        }
    }
}

/// Connection-level failures (refused, reset, pool timeout) as opposed to a
/// statement the database rejected.
fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                e,
                Sqlx::Io(_)
                    | Sqlx::PoolTimedOut
                    | Sqlx::PoolClosed
                    | Sqlx::WorkerCrashed
                    | Sqlx::Tls(_)
                    | Sqlx::Protocol(_)
            ) || matches!(e, Sqlx::Database(db) if db.code().is_some_and(|c| {
                // admin_shutdown, crash_shutdown, cannot_connect_now
                c == "57P01" || c == "57P02" || c == "57P03"
            }))
        }
        _ => false,
    }
}

pub(crate) fn is_foreign_key_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    )
}
