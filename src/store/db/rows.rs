//! Execution rows decoded straight from the driver's row, by column position.
//!
//! SeaORM's derived `FromQueryResult` looks every column up by name on every
//! row, and turns each NULL into an error message it then throws away (a
//! `format!` per NULL column). On a tree of 11,111 executions that was 40 %
//! of the server's time for the request (perf, #17). Here the positions are
//! found once per result, and each row is read with the same sqlx decoders
//! SeaORM uses, so values come out exactly as before.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, QueryResult};
use sqlx::{Column, ColumnIndex, Decode, Row};

use super::error::{StoreError, StoreResult};
use entity::execution::Model as Execution;
use entity::ExecutionStatus;

/// Which columns of `executions` a read selects. Reads the fast path makes
/// for a selection ask only for the columns its fields need (and the keys:
/// `id`, `parent_execution_id`, `created_at`, `execution_depth`); the columns
/// left out come back as empty values (an empty text, the epoch, CREATED).
/// Such rows live only in the fast path's levels, which write nothing but
/// their plan's fields and load nothing but children and child counts (no
/// parents, roots or claims). Everything else reads whole rows
/// (`Columns::ALL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Columns(u32);

impl Columns {
    pub const ALL: Columns = Columns((1 << COLUMNS.len()) - 1);
    /// What levels are built on: identity, parent, order, depth.
    pub const KEYS: Columns = Columns(
        1 << column("id")
            | 1 << column("parent_execution_id")
            | 1 << column("execution_depth")
            | 1 << column("created_at"),
    );

    /// Both sets of columns.
    pub fn union(self, other: Columns) -> Columns {
        Columns(self.0 | other.0)
    }

    /// These columns and `column` (a name that is not a column adds nothing).
    pub fn with(self, column: &str) -> Columns {
        match COLUMNS.iter().position(|c| *c == column) {
            Some(i) => Columns(self.0 | 1 << i),
            None => self,
        }
    }

    pub fn is_column(name: &str) -> bool {
        COLUMNS.contains(&name)
    }

    /// Appends the select list over `alias` to `out` (`alias.*` for all
    /// columns): the `{columns}` slot of a read (`run::projected`).
    pub fn write_select_list(self, alias: &str, out: &mut String) {
        if self == Self::ALL {
            out.push_str(alias);
            out.push_str(".*");
            return;
        }
        let mut first = true;
        for (i, name) in COLUMNS.iter().enumerate() {
            if self.0 & 1 << i == 0 {
                continue;
            }
            if !first {
                out.push_str(", ");
            }
            first = false;
            out.push_str(alias);
            out.push('.');
            out.push_str(name);
        }
    }
}

/// The position of `name` in `COLUMNS`. Only called in constants and
/// `const` blocks: a name that is not there fails the build, never a request.
#[allow(clippy::panic)]
const fn column(name: &str) -> usize {
    let mut i = 0;
    while i < COLUMNS.len() {
        if const_eq(COLUMNS[i], name) {
            return i;
        }
        i += 1;
    }
    panic!("not a column of executions")
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The columns of `executions`, in `Execution`'s field order (`Columns`
/// numbers them so, and `decode_row` reads them by these names).
const COLUMNS: [&str; 29] = [
    "id",
    "flow_id",
    "owner_id",
    "root_execution_id",
    "parent_execution_id",
    "status",
    "execution_depth",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "error_message",
    "error_node_id",
    "options",
    "integration",
    "external_events",
    "failure_count",
    "last_failure_reason",
    "last_failure_at",
    "processing_started_at",
    "processing_worker_id",
    "lease_expires_at",
    "run_at",
    "priority",
    "paused",
    "concurrency_key",
    "max_concurrency",
    "waiting",
    "node_timeout_ms",
];

pub(crate) fn decode_error(e: sqlx::Error) -> StoreError {
    StoreError::Database(sea_orm::DbErr::Type(e.to_string()))
}

fn status(text: String) -> StoreResult<ExecutionStatus> {
    ExecutionStatus::try_from_value(&text)
        .map_err(|_| StoreError::Database(sea_orm::DbErr::Type(format!("unknown status {text:?}"))))
}

/// Where each column is in a result (`SELECT *` follows the table's column
/// order, which migrations may have extended): found on its first row.
#[derive(Default)]
pub(crate) struct ExecutionDecoder {
    at: Option<[Option<usize>; COLUMNS.len()]>,
}

/// Each column's position in the result; None for a column not selected.
fn positions<R: Row>(row: &R) -> StoreResult<[Option<usize>; COLUMNS.len()]> {
    let mut at = [None; COLUMNS.len()];
    for (slot, name) in at.iter_mut().zip(COLUMNS) {
        *slot = row
            .columns()
            .iter()
            .find(|c| c.name() == name)
            .map(|c| c.ordinal());
    }
    if at[0].is_none() {
        return Err(StoreError::Database(sea_orm::DbErr::Type(
            "a result of executions without their id".into(),
        )));
    }
    Ok(at)
}

/// One column of `row` at `at`, or `absent` when it was not selected. The
/// value goes straight through the type's decoder: the types are the ones
/// SeaORM's decoders ask sqlx for, so values come out the same, but without
/// sqlx's per-value type check and its large error on each step (the
/// columns are `executions`' own, their types fixed by the migrations).
///
/// The first row of a result is read with the check (`checked`), so a
/// column whose type no longer matches (a migration that changed it) fails
/// loudly instead of being misread.
fn get<'r, R, T>(row: &'r R, at: Option<usize>, absent: T, checked: bool) -> StoreResult<T>
where
    R: Row,
    usize: ColumnIndex<R>,
    T: Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let Some(at) = at else {
        return Ok(absent);
    };
    if checked {
        return row.try_get::<T, _>(at).map_err(decode_error);
    }
    let value = row.try_get_raw(at).map_err(decode_error)?;
    T::decode(value).map_err(|e| StoreError::Database(sea_orm::DbErr::Type(e.to_string())))
}

/// One row of either backend as an `Execution`. The first row of a result
/// (`positions_found` still None) finds the columns' positions and is read with
/// type checks.
fn decode_row<'r, R>(
    row: &'r R,
    positions_found: &mut Option<[Option<usize>; COLUMNS.len()]>,
) -> StoreResult<Execution>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: Decode<'r, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + sqlx::Type<R::Database>,
    serde_json::Value: Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let checked = positions_found.is_none();
    let at = match *positions_found {
        Some(at) => at,
        None => *positions_found.insert(positions(row)?),
    };
    let text = |i: usize| get(row, at[i], String::new(), checked);
    let opt_text = |i: usize| get(row, at[i], None::<String>, checked);
    let time = |i: usize| get(row, at[i], DateTime::<Utc>::UNIX_EPOCH, checked);
    let opt_time = |i: usize| get(row, at[i], None::<DateTime<Utc>>, checked);
    let json = |i: usize| get(row, at[i], None::<serde_json::Value>, checked);
    let int = |i: usize| get(row, at[i], 0i32, checked);
    Ok(Execution {
        id: text(const { column("id") })?,
        flow_id: text(const { column("flow_id") })?,
        owner_id: text(const { column("owner_id") })?,
        root_execution_id: text(const { column("root_execution_id") })?,
        parent_execution_id: opt_text(const { column("parent_execution_id") })?,
        status: match at[const { column("status") }] {
            Some(_) => status(text(const { column("status") })?)?,
            None => ExecutionStatus::Created,
        },
        execution_depth: int(const { column("execution_depth") })?,
        created_at: time(const { column("created_at") })?,
        updated_at: time(const { column("updated_at") })?,
        started_at: opt_time(const { column("started_at") })?,
        completed_at: opt_time(const { column("completed_at") })?,
        error_message: opt_text(const { column("error_message") })?,
        error_node_id: opt_text(const { column("error_node_id") })?,
        options: json(const { column("options") })?,
        integration: json(const { column("integration") })?,
        external_events: json(const { column("external_events") })?,
        failure_count: int(const { column("failure_count") })?,
        last_failure_reason: opt_text(const { column("last_failure_reason") })?,
        last_failure_at: opt_time(const { column("last_failure_at") })?,
        processing_started_at: opt_time(const { column("processing_started_at") })?,
        processing_worker_id: opt_text(const { column("processing_worker_id") })?,
        lease_expires_at: opt_time(const { column("lease_expires_at") })?,
        run_at: opt_time(const { column("run_at") })?,
        priority: int(const { column("priority") })?,
        paused: get(row, at[const { column("paused") }], false, checked)?,
        concurrency_key: opt_text(const { column("concurrency_key") })?,
        max_concurrency: get(
            row,
            at[const { column("max_concurrency") }],
            None::<i32>,
            checked,
        )?,
        waiting: int(const { column("waiting") })?,
        node_timeout_ms: get(
            row,
            at[const { column("node_timeout_ms") }],
            None::<i64>,
            checked,
        )?,
    })
}

impl ExecutionDecoder {
    pub(crate) fn decode(&mut self, result: &QueryResult) -> StoreResult<Execution> {
        if let Some(row) = result.try_as_pg_row() {
            return decode_row(row, &mut self.at);
        }
        if let Some(row) = result.try_as_sqlite_row() {
            return decode_row(row, &mut self.at);
        }
        Err(StoreError::Database(sea_orm::DbErr::Type(
            "a row of no known backend".into(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sqlx::sqlite::SqlitePool;

    /// A column whose stored type does not match fails the read instead of
    /// being misread (unchecked, a text depth would read as 0).
    #[tokio::test]
    async fn a_column_of_another_type_is_refused() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::query(
            "CREATE TABLE executions (id TEXT, parent_execution_id TEXT, \
             execution_depth INTEGER, created_at TEXT)",
        )
        .execute(&pool)
        .await
        .unwrap();
        // A depth stored as an integer or as a text (SQLite keeps either).
        let read = |depth: serde_json::Value| {
            let pool = pool.clone();
            async move {
                sqlx::query("DELETE FROM executions")
                    .execute(&pool)
                    .await
                    .unwrap();
                let insert = sqlx::query(
                    "INSERT INTO executions VALUES ('a', NULL, $1, '2026-01-01T00:00:00+00:00')",
                );
                let insert = match depth {
                    serde_json::Value::Number(n) => insert.bind(n.as_i64()),
                    other => insert.bind(other.as_str().map(str::to_owned)),
                };
                insert.execute(&pool).await.unwrap();
                let row = sqlx::query("SELECT * FROM executions")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                ExecutionDecoder::default().decode(&QueryResult::from(row))
            }
        };
        assert_eq!(read(3.into()).await.unwrap().execution_depth, 3);
        assert!(read("deep".into()).await.is_err());
    }
}
