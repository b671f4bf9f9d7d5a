//! The one mapping from store errors to GraphQL errors. Every error the API
//! returns carries `extensions.code`; an INTERNAL error shows the client an
//! error id and nothing else, the cause goes to the log under that id.

use async_graphql::{Error, ErrorExtensions};

use crate::store::StoreError;

pub mod code {
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const CONFLICT: &str = "CONFLICT";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const INTERNAL: &str = "INTERNAL";
    /// The request would load more executions than its budget allows.
    pub const BUDGET_EXCEEDED: &str = "BUDGET_EXCEEDED";
    /// A subscription's `after` cursor is older than the event log retains.
    pub const EVENTS_EXPIRED: &str = "EVENTS_EXPIRED";
    /// A persisted query's hash the server does not know: send the
    /// document with it (Apollo's protocol; the message is
    /// `PersistedQueryNotFound`, which clients look for).
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    /// Allow-list mode: the document is not one the server lists.
    pub const OPERATION_NOT_ALLOWED: &str = "OPERATION_NOT_ALLOWED";
}

pub fn coded(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, ext| ext.set("code", code))
}

pub fn forbidden(message: impl Into<String>) -> Error {
    coded(code::FORBIDDEN, message)
}

pub fn bad_input(field: &str, message: impl std::fmt::Display) -> Error {
    let field = field.to_owned();
    Error::new(format!("invalid {field}: {message}")).extend_with(move |_, ext| {
        ext.set("code", code::BAD_USER_INPUT);
        ext.set("field", field.as_str());
    })
}

impl From<StoreError> for GqlError {
    fn from(err: StoreError) -> Self {
        GqlError(match err {
            StoreError::InvalidInput { field, message } => bad_input(field, message),
            StoreError::NotFound { .. } => coded(code::NOT_FOUND, err.to_string()),
            StoreError::Forbidden(_) => coded(code::FORBIDDEN, err.to_string()),
            StoreError::Conflict(_) => coded(code::CONFLICT, err.to_string()),
            StoreError::TooManyRows { .. } => coded(code::BUDGET_EXCEEDED, err.to_string()),
            StoreError::EventsExpired => coded(code::EVENTS_EXPIRED, err.to_string()),
            StoreError::Unavailable(ref cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                coded(code::UNAVAILABLE, "the database is unavailable; try again")
            }
            StoreError::Database(ref cause) => internal(cause),
        })
    }
}

/// Logs `cause` under a fresh error id and returns an error that shows only the id.
pub fn internal(cause: &dyn std::fmt::Display) -> Error {
    let error_id = uuid::Uuid::now_v7();
    tracing::error!(%error_id, error = %cause, "internal error");
    Error::new(format!("internal error (id {error_id})")).extend_with(move |_, ext| {
        ext.set("code", code::INTERNAL);
        ext.set("errorId", error_id.to_string());
    })
}

/// A newtype so `?` on a `StoreError` inside a resolver yields a coded error.
pub struct GqlError(pub Error);

impl From<GqlError> for Error {
    fn from(err: GqlError) -> Self {
        err.0
    }
}

pub type GqlResult<T> = Result<T, Error>;

/// Turns a store result into a resolver result with the mapped error.
pub trait OrGql<T> {
    fn gql(self) -> GqlResult<T>;
}

impl<T> OrGql<T> for Result<T, StoreError> {
    fn gql(self) -> GqlResult<T> {
        self.map_err(|e| GqlError::from(e).into())
    }
}
