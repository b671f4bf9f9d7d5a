//! Running the table's statements: rows decoded as executions or models,
//! an operation's steps, and the two slots the store fills in itself.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sea_orm::{
    ConnectionTrait, DbBackend, FromQueryResult, QueryResult, Statement, StreamTrait, Value,
};

use super::error::StoreResult;
use super::rows::{Columns, ExecutionDecoder};
use crate::store::sql::Steps;
use entity::execution::Model as Execution;

/// A statement of the table with its parameters, in bind order.
pub(crate) fn statement(
    backend: DbBackend,
    text: &str,
    values: impl IntoIterator<Item = Value>,
) -> Statement {
    Statement::from_sql_and_values(backend, text, values)
}

/// The executions `statement` returns, decoded as they arrive: a large
/// result is never held twice (as the driver's rows and as executions). `T`
/// is `Execution`, or `Arc<Execution>` for rows that will be shared: an
/// execution is a few hundred bytes, and each move of a level's rows copies
/// all of them.
pub(crate) async fn executions<C, T>(conn: &C, statement: Statement) -> StoreResult<Vec<T>>
where
    C: ConnectionTrait + StreamTrait,
    T: From<Execution>,
{
    let mut decoder = ExecutionDecoder::default();
    let mut rows = std::pin::pin!(conn.stream(statement).await?);
    let mut executions = Vec::new();
    while let Some(row) = rows.try_next().await? {
        executions.push(T::from(decoder.decode(&row)?));
    }
    Ok(executions)
}

/// The one execution `statement` returns, if any.
pub(crate) async fn execution<C: ConnectionTrait>(
    conn: &C,
    statement: Statement,
) -> StoreResult<Option<Execution>> {
    let row = conn.query_one(statement).await?;
    row.map(|row| ExecutionDecoder::default().decode(&row))
        .transpose()
}

/// The time a one-row statement answers as `at` (None: no row, or null).
pub(crate) async fn time_at<C: ConnectionTrait>(
    conn: &C,
    statement: Statement,
) -> StoreResult<Option<DateTime<Utc>>> {
    Ok(match conn.query_one(statement).await? {
        Some(row) => row.try_get("", "at")?,
        None => None,
    })
}

/// Every execution of a result (a `RETURNING *`), decoded by position.
pub(crate) fn decode_all(rows: &[QueryResult]) -> StoreResult<Vec<Execution>> {
    let mut decoder = ExecutionDecoder::default();
    rows.iter().map(|row| decoder.decode(row)).collect()
}

/// The rows of `statement` as `M`.
pub(crate) async fn models<M, C>(conn: &C, statement: Statement) -> StoreResult<Vec<M>>
where
    M: FromQueryResult,
    C: ConnectionTrait,
{
    Ok(M::find_by_statement(statement).all(conn).await?)
}

/// The first row of `statement` as `M`.
pub(crate) async fn model<M, C>(conn: &C, statement: Statement) -> StoreResult<Option<M>>
where
    M: FromQueryResult,
    C: ConnectionTrait,
{
    Ok(M::find_by_statement(statement).one(conn).await?)
}

/// Runs an operation's steps in order on `conn` (a write: one transaction,
/// or one savepoint of a SQLite commit group) with `values`, and returns the
/// rows of the last. Each step after the first is given, as one more
/// parameter after `values`, the JSON array of what the step before it
/// returned in its first column (the ids it claimed, released, extended); a
/// step that returns nothing ends the operation with no rows.
pub(crate) async fn steps<C, S>(
    conn: &C,
    steps: &[S],
    values: Vec<Value>,
) -> StoreResult<Vec<QueryResult>>
where
    C: ConnectionTrait,
    S: AsRef<str> + Sync,
{
    let backend = conn.get_database_backend();
    let arity = values.len();
    let mut values = values;
    let mut rows = Vec::new();
    for (i, text) in steps.iter().enumerate() {
        if i > 0 {
            let ids = rows
                .iter()
                .map(|row: &QueryResult| row.try_get_by_index::<String>(0))
                .collect::<Result<Vec<_>, _>>()?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            values.truncate(arity);
            values.push(json_list(&ids).into());
        }
        rows = conn
            .query_all(statement(backend, text.as_ref(), values.clone()))
            .await?;
    }
    Ok(rows)
}

/// `ids` as the JSON array the statements read keys from (`json_each`,
/// `jsonb_array_elements_text`): one text for any number of keys, so one
/// statement and one cached plan.
pub(crate) fn json_list(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// A pull's text with its limit (validated by the caller) written in for
/// `{limit}`.
pub(crate) fn with_limit(text: &str, limit: i64) -> String {
    text.replace("{limit}", &limit.to_string())
}

/// `steps` with their limit written in.
pub(crate) fn steps_with_limit(steps: Steps, limit: i64) -> Vec<String> {
    steps.iter().map(|text| with_limit(text, limit)).collect()
}

/// A read's text with `alias.{columns}` replaced by the columns a
/// selection reads, over that alias. The names come from the table's own
/// list (`Columns`), never from a request.
pub(crate) fn projected(text: &str, columns: Columns) -> String {
    const SLOT: &str = ".{columns}";
    let Some(at) = text.find(SLOT) else {
        return text.to_owned();
    };
    let alias_start = text[..at]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let alias = &text[alias_start..at];
    let mut out = String::with_capacity(text.len() + 256);
    out.push_str(&text[..alias_start]);
    columns.write_select_list(alias, &mut out);
    out.push_str(&text[at + SLOT.len()..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projections_fill_the_slot_over_its_alias() {
        let text = "SELECT t.{columns} FROM x t";
        assert_eq!(projected(text, Columns::ALL), "SELECT t.* FROM x t");
        let keys = projected(text, Columns::KEYS);
        assert!(
            keys.starts_with("SELECT t.id, t.parent_execution_id"),
            "{keys}"
        );
        assert!(keys.ends_with(" FROM x t"));
        assert_eq!(with_limit("LIMIT {limit}", 7), "LIMIT 7");
    }
}
