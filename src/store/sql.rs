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
        if let Some(owner) = scope.owner() {
            let p = self.bind(owner.to_owned());
            self.text.push_str(&format!(" AND {column} = {p}"));
        }
        self
    }

    pub fn build(self, backend: DbBackend) -> Statement {
        Statement::from_sql_and_values(backend, self.text, self.values)
    }
}

/// A condition that holds for the ids in a JSON array parameter. One SQL text
/// for any number of ids, so it is one statement and one cached plan.
pub(crate) fn in_json_list(backend: DbBackend, column: &str, placeholder: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            format!("{column} IN (SELECT jsonb_array_elements_text(CAST({placeholder} AS jsonb)))")
        }
        _ => format!("{column} IN (SELECT value FROM json_each({placeholder}))"),
    }
}

pub(crate) fn json_list(ids: &[String]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}
