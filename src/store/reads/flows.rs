//! Flows: every flow with a run, newest last run first (what the explorer
//! opens on).

use chrono::{DateTime, Utc};
use sea_orm::Value;

use super::{Page, Reads};
use crate::store::db::{validate, Cursor, Scope, StoreResult};
use entity::execution::Model as Execution;

/// A flow that has at least one run (root execution): its newest run.
#[derive(Clone, Debug)]
pub struct Flow {
    pub last_run: Execution,
}

impl Flow {
    pub fn flow_id(&self) -> &str {
        &self.last_run.flow_id
    }

    pub fn last_run_at(&self) -> DateTime<Utc> {
        self.last_run.created_at
    }

    /// Its place in the list: (last run's time, flow id).
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.last_run.created_at, self.last_run.flow_id.clone())
    }
}

impl Reads {
    /// `flows`: every flow with a run (of the scope's owner), newest last
    /// run first, keyset-paged on (last run's time, flow id). The cost
    /// follows the number of flows, never the number of executions.
    pub async fn get_flows(
        &self,
        first: Option<i64>,
        after: Option<&str>,
        scope: &Scope,
    ) -> StoreResult<Page<Flow>> {
        let first = validate::page_size(first)?;
        let after = Cursor::parse_opt(after)?;
        let (at, flow, has_cursor) = match &after {
            Some(cursor) => (cursor.created_at, cursor.id.clone(), 1),
            None => (DateTime::<Utc>::UNIX_EPOCH, String::new(), 0),
        };
        let values: Vec<Value> = vec![
            at.into(),
            flow.into(),
            (has_cursor as i64).into(),
            (first + 1).into(),
            scope.param(),
        ];
        let sql = self.db.sql();
        let text = match scope.owner() {
            Some(_) => sql.owner_flows,
            None => sql.flows,
        };
        let runs = self.db.read_executions(self.db.stmt(text, values)).await?;
        Ok(Page::cut(runs, first, after.is_some()).map(|last_run| Flow { last_run }))
    }
}
