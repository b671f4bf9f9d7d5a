//! The small values every part of the store shares: whose executions a
//! caller sees, the contract's bounds, the store's clock, input checks.

use chrono::{DateTime, Utc};

use super::error::{StoreError, StoreResult};

/// Whose executions a caller may see. A `user` token sees only its own; the
/// owner is a parameter of every read statement (`$n IS NULL OR owner_id =
/// $n`), never a filter applied afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Owner(String),
}

impl Scope {
    pub fn owner(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Owner(owner) => Some(owner),
        }
    }

    /// The owner parameter of a read statement: NULL for every owner.
    pub fn param(&self) -> sea_orm::Value {
        self.owner().map(str::to_owned).into()
    }
}

/// Bounds fixed by the contract (and the GraphQL arguments' defaults).
pub mod limits {
    pub const MAX_ID_BYTES: usize = 255;
    pub const MAX_TIMEOUT_MS: i64 = 86_400_000;
    pub const DEFAULT_PAGE: i64 = 50;
    pub const MAX_PAGE: i64 = 500;
    pub const MAX_CLAIM_BATCH: i64 = 100;
    /// Priorities run from `MIN_PRIORITY` to `MAX_PRIORITY`, higher first.
    pub const MIN_PRIORITY: i32 = -100;
    pub const MAX_PRIORITY: i32 = 100;
    pub const DEFAULT_RECOVERY_LIMIT: i64 = 1000;
    pub const MAX_RECOVERY_LIMIT: i64 = 10_000;
    /// The most items one batch (`createExecutions`, `finishExecutions`,
    /// `extendClaims`) may hold.
    pub const MAX_BATCH: usize = 10_000;
}

/// The current time as the store records it: UTC, microsecond precision
/// (PostgreSQL's), so a value read back equals the value written.
/// Timestamps are taken by the server, never by the database's `now()`, and
/// bound as parameters: SQLite's text timestamps and PostgreSQL's
/// `timestamptz` then order the same way.
pub fn now() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A time as the store writes it as text (in a JSON parameter): as the
/// driver encodes a time for SQLite, so that texts compare in time order.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// A time before every execution (an open lower bound, bound as a value).
pub fn before_all() -> DateTime<Utc> {
    DateTime::from_timestamp(-62_135_596_800, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    // 0001-01-01
}

/// A time after every execution (an open upper bound, bound as a value).
pub fn after_all() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    // 9999-12-31
}

/// Validation shared by the store's operations; errors name the field.
pub mod validate {
    use serde_json::{Map, Value};

    use super::{limits, StoreError, StoreResult};

    /// The object an execution's `options` holds under `key` (None: absent
    /// or null); anything else is `field` invalid, described by `shape`.
    pub fn options_object<'a>(
        options: Option<&'a Value>,
        key: &str,
        field: &'static str,
        shape: &str,
    ) -> StoreResult<Option<&'a Map<String, Value>>> {
        match options.and_then(|o| o.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => match value.as_object() {
                Some(object) => Ok(Some(object)),
                None => Err(StoreError::invalid(
                    field,
                    format!("must be an object {shape}"),
                )),
            },
        }
    }

    /// The integer `name` of `object` in `min..=max` (None: absent or
    /// null); anything else is `field` invalid.
    pub fn integer_field(
        object: &Map<String, Value>,
        field: &'static str,
        name: &str,
        min: i64,
        max: i64,
    ) -> StoreResult<Option<i64>> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => match value.as_i64().filter(|v| (min..=max).contains(v)) {
                Some(v) => Ok(Some(v)),
                None => Err(StoreError::invalid(
                    field,
                    format!("{name} must be an integer between {min} and {max}"),
                )),
            },
        }
    }

    pub fn id(field: &'static str, value: &str) -> StoreResult<()> {
        if value.is_empty() {
            return Err(StoreError::invalid(field, "must not be empty"));
        }
        if value.len() > limits::MAX_ID_BYTES {
            return Err(StoreError::invalid(
                field,
                format!("must be at most {} bytes", limits::MAX_ID_BYTES),
            ));
        }
        Ok(())
    }

    pub fn timeout_ms(field: &'static str, value: i64) -> StoreResult<()> {
        if !(1..=limits::MAX_TIMEOUT_MS).contains(&value) {
            return Err(StoreError::invalid(
                field,
                format!("must be between 1 and {}", limits::MAX_TIMEOUT_MS),
            ));
        }
        Ok(())
    }

    pub fn non_negative(field: &'static str, value: i32) -> StoreResult<()> {
        if value < 0 {
            return Err(StoreError::invalid(field, "must be at least 0"));
        }
        Ok(())
    }

    pub fn page_size(value: Option<i64>) -> StoreResult<i64> {
        let first = value.unwrap_or(limits::DEFAULT_PAGE);
        if !(0..=limits::MAX_PAGE).contains(&first) {
            return Err(StoreError::invalid(
                "first",
                format!("must be between 0 and {}", limits::MAX_PAGE),
            ));
        }
        Ok(first)
    }

    pub fn range(field: &'static str, value: i64, min: i64, max: i64) -> StoreResult<()> {
        if !(min..=max).contains(&value) {
            return Err(StoreError::invalid(
                field,
                format!("must be between {min} and {max}"),
            ));
        }
        Ok(())
    }

    /// A batch of `n` items is at most `limits::MAX_BATCH`.
    pub fn batch(field: &'static str, n: usize) -> StoreResult<()> {
        if n > limits::MAX_BATCH {
            return Err(StoreError::invalid(
                field,
                format!(
                    "at most {} items per request, this one has {n}",
                    limits::MAX_BATCH
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_bounds_enclose_every_time() {
        assert_eq!(before_all().to_rfc3339(), "0001-01-01T00:00:00+00:00");
        assert_eq!(after_all().to_rfc3339(), "9999-12-31T23:59:59+00:00");
        assert!(before_all() < now() && now() < after_all());
    }
}
