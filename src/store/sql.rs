//! A small builder for the store's hand-written SQL: it numbers the
//! placeholders (`$1`, `$2` … which both PostgreSQL and SQLite accept) and
//! appends the owner filter of a `Scope`.

use sea_orm::{DbBackend, Statement, Value};

use super::Scope;

pub(crate) struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Adds a parameter and returns its placeholder.
    pub fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        format!("${}", self.values.len())
    }

    /// Appends ` AND {column} = $n` when the scope is one owner's.
    pub fn scope(&mut self, column: &str, scope: &Scope) -> &mut Self {
        let filter = self.owner_filter(column, scope);
        self.push(&filter)
    }

    pub fn build(self, backend: DbBackend) -> Statement {
        Statement::from_sql_and_values(backend, self.text, self.values)
    }
}

/// A whole SQL text with its parameters, in bind order.
pub(crate) fn statement(
    backend: DbBackend,
    text: &str,
    values: impl IntoIterator<Item = Value>,
) -> Statement {
    Statement::from_sql_and_values(backend, text, values)
}

/// The ids of a JSON array parameter as a row source `k(value)`. One SQL
/// text for any number of ids, so it is one statement and one cached plan.
///
/// Statements that load a level join it *per key*: on PostgreSQL through a
/// `LATERAL` subquery fenced with `OFFSET 0`, on SQLite through a `CROSS
/// JOIN` (which fixes the join order). Either way each key costs one index
/// probe. A plain `col IN (SELECT …)` lets PostgreSQL guess 100 keys times
/// the table's average fanout and pick a sequential scan of the whole table;
/// per-key joins read only the rows they return, whatever the statistics.
pub(crate) fn json_keys(backend: DbBackend, placeholder: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            format!("jsonb_array_elements_text(CAST({placeholder} AS jsonb)) AS k(value)")
        }
        _ => format!("json_each({placeholder}) AS k"),
    }
}

pub(crate) fn json_list(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// What `Sql::per_key` joins to each key.
pub(crate) struct PerKey<'a> {
    /// The table read per key, aliased `x` inside.
    pub table: &'a str,
    /// Its column that equals the key (indexed).
    pub column: &'a str,
    /// Further conditions on `x` (each starting with ` AND`).
    pub filter: String,
    /// Order of the rows of one key, in terms of `x`.
    pub order: &'a str,
    /// Placeholder of the most rows kept per key.
    pub limit: Option<String>,
}

impl Sql {
    /// Appends `FROM <keys> …`, joining every key of the JSON array `ids` to
    /// its rows of `join.table`, available as `r.*`. Each key costs one index
    /// probe and reads only the rows it keeps (see `json_keys`). On SQLite the
    /// appended text ends inside a WHERE clause: callers add only ORDER BY and
    /// LIMIT after it.
    pub fn per_key(&mut self, backend: DbBackend, ids: &[String], join: PerKey<'_>) -> &mut Self {
        let keys_param = self.bind(json_list(ids));
        let keys = json_keys(backend, &keys_param);
        let PerKey {
            table,
            column,
            filter,
            order,
            limit,
        } = join;
        let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
        let inner =
            format!("FROM {table} x WHERE x.{column} = k.value{filter} ORDER BY {order}{limit}");
        match backend {
            // OFFSET 0 fences the subquery: PostgreSQL cannot flatten it into
            // a join it would plan on its own (hash join, sequential scan).
            DbBackend::Postgres => self.push(&format!(
                " FROM {keys} CROSS JOIN LATERAL (SELECT x.* {inner} OFFSET 0) r"
            )),
            _ => self.push(&format!(
                " FROM {keys} CROSS JOIN {table} r WHERE r.rowid IN (SELECT x.rowid {inner})"
            )),
        }
    }

    /// The scope's owner condition on `x`'s own owner column (` AND …`).
    pub fn owner_filter(&mut self, column: &str, scope: &Scope) -> String {
        match scope.owner() {
            Some(owner) => {
                let p = self.bind(owner.to_owned());
                format!(" AND {column} = {p}")
            }
            None => String::new(),
        }
    }

    /// The scope's owner condition for rows keyed by an execution id.
    pub fn owner_of_execution(&mut self, execution_column: &str, scope: &Scope) -> String {
        match scope.owner() {
            Some(owner) => {
                let p = self.bind(owner.to_owned());
                format!(
                    " AND EXISTS (SELECT 1 FROM executions o WHERE o.id = {execution_column} AND o.owner_id = {p})"
                )
            }
            None => String::new(),
        }
    }
}
