//! Flows (every flow with a run, newest last run first) and an execution's
//! ancestors: the reads the explorer opens on and reveals with.

use chrono::{DateTime, Utc};
use sea_orm::{FromQueryResult, Statement, Value};

use super::{validate, Cursor, Execution, ExecutionStore, Page, Scope, StoreResult};

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

/// The newest run of each flow, newest first, after the cursor
/// ($1, $2) = (last run's time, flow id) when $3 is 1, at most $4 rows.
///
/// `flows` walks the distinct flow ids of roots one index probe each (a
/// "skip scan" over the partial index of roots by flow and status, starting
/// from '', which sorts before any id), and finds each flow's newest run
/// with a few more probes. So the cost follows the number of flows, never
/// the number of executions or runs. (Written once; the two variants differ
/// in the owner condition and in how the newest run is found.)
macro_rules! flows {
    ($owner:literal, $newest_run:expr) => {
        concat!(
            "\
WITH RECURSIVE flows(flow_id) AS (
    SELECT CAST('' AS TEXT)
    UNION ALL
    SELECT (SELECT e.flow_id FROM executions e
            WHERE e.execution_depth = 0",
            $owner,
            " AND e.flow_id > flows.flow_id
            ORDER BY e.flow_id LIMIT 1)
    FROM flows WHERE flows.flow_id IS NOT NULL
), newest AS (
    SELECT flows.flow_id, ",
            $newest_run,
            " AS last_run_id
    FROM flows WHERE flows.flow_id <> ''
)
SELECT r.*
FROM newest JOIN executions r ON r.id = newest.last_run_id
WHERE $3 = 0 OR r.created_at < $1 OR (r.created_at = $1 AND newest.flow_id < $2)
ORDER BY r.created_at DESC, newest.flow_id DESC
LIMIT $4"
        )
    };
}
/// A flow's newest run in one status (`$status`, as the enum spells it):
/// one probe of the roots' index by flow, status and time, as `$alias`.
macro_rules! newest_run_in {
    ($status:literal, $alias:literal) => {
        concat!(
            "SELECT * FROM (SELECT e.id, e.created_at FROM executions e
            WHERE e.flow_id = flows.flow_id AND e.execution_depth = 0 AND e.status = '",
            $status,
            "'
            ORDER BY e.created_at DESC, e.id DESC LIMIT 1) ",
            $alias
        )
    };
}

/// Every owner's flows. Roots are indexed by flow, status and time (there
/// is no index of roots by flow and time alone: one index entry less per
/// write of a root), so a flow's newest run is the newest of the newest run
/// in each status: one probe per status.
const FLOWS: &str = flows!(
    "",
    concat!(
        "(SELECT n.id FROM (\n        ",
        newest_run_in!("created", "s1"),
        "\n        UNION ALL\n        ",
        newest_run_in!("running", "s2"),
        "\n        UNION ALL\n        ",
        newest_run_in!("paused", "s3"),
        "\n        UNION ALL\n        ",
        newest_run_in!("completed", "s4"),
        "\n        UNION ALL\n        ",
        newest_run_in!("failed", "s5"),
        "\n        UNION ALL\n        ",
        newest_run_in!("stopped", "s6"),
        "\n    ) n ORDER BY n.created_at DESC, n.id DESC LIMIT 1)"
    )
);
/// One owner's ($5) flows: its runs only, through the partial index of
/// roots by owner, flow and time (one probe for a flow's newest run).
const OWNER_FLOWS: &str = flows!(
    " AND e.owner_id = $5",
    "(SELECT e.id FROM executions e
        WHERE e.flow_id = flows.flow_id AND e.execution_depth = 0 AND e.owner_id = $5
        ORDER BY e.created_at DESC, e.id DESC LIMIT 1)"
);

/// The executions above $1, root first: one walk up the parent links, one
/// primary-key probe per level (the walk drives: `CROSS JOIN` keeps SQLite
/// from reading the table in another order).
const ANCESTORS: &str = "\
WITH RECURSIVE up AS (
    SELECT * FROM executions
    WHERE id = (SELECT parent_execution_id FROM executions WHERE id = $1)
    UNION ALL
    SELECT e.* FROM up CROSS JOIN executions e WHERE e.id = up.parent_execution_id
)
SELECT * FROM up ORDER BY execution_depth";

/// `ANCESTORS` of one owner's execution ($2), through that owner's rows.
const OWNER_ANCESTORS: &str = "\
WITH RECURSIVE up AS (
    SELECT * FROM executions
    WHERE id = (SELECT parent_execution_id FROM executions WHERE id = $1 AND owner_id = $2)
      AND owner_id = $2
    UNION ALL
    SELECT e.* FROM up CROSS JOIN executions e
    WHERE e.id = up.parent_execution_id AND e.owner_id = $2
)
SELECT * FROM up ORDER BY execution_depth";

impl ExecutionStore {
    /// `flows`: every flow with a run (of the scope's owner), newest last
    /// run first, keyset-paged on (last run's time, flow id).
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
        let mut values: Vec<Value> = vec![
            at.into(),
            flow.into(),
            (has_cursor as i64).into(),
            (first + 1).into(),
        ];
        let text = match scope.owner() {
            Some(owner) => {
                values.push(owner.to_owned().into());
                OWNER_FLOWS
            }
            None => FLOWS,
        };
        let runs = Execution::find_by_statement(Statement::from_sql_and_values(
            self.backend(),
            text,
            values,
        ))
        .all(&self.reads)
        .await?;
        Ok(Page::cut(runs, first, after.is_some()).map(|last_run| Flow { last_run }))
    }

    /// `Execution.ancestors`: root first, the execution itself excluded.
    pub async fn get_ancestors(&self, id: &str, scope: &Scope) -> StoreResult<Vec<Execution>> {
        validate::id("id", id)?;
        let mut values: Vec<Value> = vec![id.to_owned().into()];
        let text = match scope.owner() {
            Some(owner) => {
                values.push(owner.to_owned().into());
                OWNER_ANCESTORS
            }
            None => ANCESTORS,
        };
        Ok(Execution::find_by_statement(Statement::from_sql_and_values(
            self.backend(),
            text,
            values,
        ))
        .all(&self.reads)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ExecutionStatus;

    /// A flow's newest run is looked for in every status, each once: a
    /// status missing here would hide the flows whose newest run is in it.
    #[test]
    fn flows_look_for_the_newest_run_in_every_status() {
        for status in ExecutionStatus::ALL {
            let probe = format!("e.status = '{}'", status.as_str());
            assert_eq!(FLOWS.matches(&probe).count(), 1, "{probe}");
        }
        assert_eq!(
            FLOWS.matches("e.status = '").count(),
            ExecutionStatus::ALL.len()
        );
    }
}
