//! Executions by id, and an execution's ancestors.

use super::Reads;
use crate::store::db::{run, validate, Scope, StoreResult};
use entity::execution::Model as Execution;

impl Reads {
    /// `get`.
    pub async fn get(&self, id: &str, scope: &Scope) -> StoreResult<Option<Execution>> {
        validate::id("id", id)?;
        let execution = self.db.stmt(
            self.db.sql().execution,
            [id.to_owned().into(), scope.param()],
        );
        self.db.read_execution(execution).await
    }

    /// Many executions by id in one statement (the parent and root loads of
    /// a level, a claim's execution).
    pub async fn get_many(&self, ids: &[String], scope: &Scope) -> StoreResult<Vec<Execution>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let by_ids = self.db.stmt(
            self.db.sql().executions_by_ids,
            [run::json_list(ids).into(), scope.param()],
        );
        self.db.read_executions(by_ids).await
    }

    /// `Execution.ancestors`: root first, the execution itself excluded.
    pub async fn get_ancestors(&self, id: &str, scope: &Scope) -> StoreResult<Vec<Execution>> {
        validate::id("id", id)?;
        let ancestors = self.db.stmt(
            self.db.sql().ancestors,
            [id.to_owned().into(), scope.param()],
        );
        self.db.read_executions(ancestors).await
    }
}
