//! Creating, reading, updating and deleting executions.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sea_orm::{ConnectionTrait, FromQueryResult, JsonValue, Statement, StreamTrait};

use super::error::is_foreign_key_violation;
use super::rows::ExecutionDecoder;
use super::sql::{PerKey, Sql};
use super::{
    now, truncate_micros, validate, Execution, ExecutionStatus, ExecutionStore, Scope, StoreError,
    StoreResult,
};

#[derive(Clone, Debug, Default)]
pub struct CreateExecution {
    /// Client-supplied id; a UUIDv7 is generated when absent.
    pub id: Option<String>,
    pub flow_id: String,
    pub owner_id: String,
    pub parent_execution_id: Option<String>,
    pub status: Option<ExecutionStatus>,
    pub options: Option<JsonValue>,
    pub integration: Option<JsonValue>,
    pub external_events: Option<JsonValue>,
}

/// `updateExecutionStatus`: the status plus the optional fields to set; a
/// field left `None` keeps its stored value.
#[derive(Clone, Debug)]
pub struct StatusUpdate {
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub error_message: Option<String>,
    pub error_node_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub processing_started_at: Option<DateTime<Utc>>,
    pub processing_worker_id: Option<String>,
    pub failure_count: Option<i32>,
    pub last_failure_reason: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

impl StatusUpdate {
    pub fn new(execution_id: impl Into<String>, status: ExecutionStatus) -> Self {
        Self {
            execution_id: execution_id.into(),
            status,
            error_message: None,
            error_node_id: None,
            started_at: None,
            completed_at: None,
            processing_started_at: None,
            processing_worker_id: None,
            failure_count: None,
            last_failure_reason: None,
            last_failure_at: None,
        }
    }
}

/// The timestamps a status implies when the caller gives none:
/// RUNNING starts the clock, a terminal status stops it.
pub(super) fn default_times(
    status: ExecutionStatus,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let started = match (status, started_at, completed_at) {
        (ExecutionStatus::Running, None, None) => Some(now),
        _ => started_at,
    };
    let completed = match completed_at {
        None if status.is_terminal() => Some(now),
        other => other,
    };
    (started, completed)
}

#[derive(FromQueryResult)]
struct ParentInfo {
    root_execution_id: String,
    execution_depth: i32,
}

impl ExecutionStore {
    pub(crate) async fn query_executions<C: ConnectionTrait + StreamTrait>(
        conn: &C,
        sql: Sql,
    ) -> StoreResult<Vec<Execution>> {
        Self::query_rows(conn, sql).await
    }

    /// Rows are decoded as they arrive: a large result is never held twice
    /// (as the driver's rows and as executions). `T` is `Execution`, or
    /// `Arc<Execution>` for rows that will be shared: an execution is a few
    /// hundred bytes, and each move of a level's rows copies all of them.
    pub(crate) async fn query_rows<C, T>(conn: &C, sql: Sql) -> StoreResult<Vec<T>>
    where
        C: ConnectionTrait + StreamTrait,
        T: From<Execution>,
    {
        let stmt = sql.build(conn.get_database_backend());
        let mut decoder = ExecutionDecoder::default();
        let mut rows = std::pin::pin!(conn.stream(stmt).await?);
        let mut executions = Vec::new();
        while let Some(row) = rows.try_next().await? {
            executions.push(T::from(decoder.decode(&row)?));
        }
        Ok(executions)
    }

    /// `query_executions` reading at most `max_rows + 1` rows (a LIMIT
    /// appended to `sql`, which must end where a LIMIT may follow), and
    /// refusing with `TooManyRows` when there were more than `max_rows`.
    pub(crate) async fn query_executions_within<C, T>(
        conn: &C,
        mut sql: Sql,
        max_rows: Option<i64>,
    ) -> StoreResult<Vec<T>>
    where
        C: ConnectionTrait + StreamTrait,
        T: From<Execution>,
    {
        if let Some(max) = max_rows {
            let n = sql.bind(max + 1);
            sql.push(&format!(" LIMIT {n}"));
        }
        let rows = Self::query_rows(conn, sql).await?;
        match max_rows {
            Some(max) if rows.len() as i64 > max => Err(StoreError::TooManyRows { limit: max }),
            _ => Ok(rows),
        }
    }

    pub(crate) async fn query_execution<C: ConnectionTrait>(
        conn: &C,
        sql: Sql,
    ) -> StoreResult<Option<Execution>> {
        let stmt = sql.build(conn.get_database_backend());
        let row = conn.query_one(stmt).await?;
        row.map(|row| ExecutionDecoder::default().decode(&row))
            .transpose()
    }

    /// One statement that writes and returns at most one row, run as a
    /// write (`ExecutionStore::write`).
    pub(crate) async fn write_row<M>(&self, statement: Statement) -> StoreResult<Option<M>>
    where
        M: FromQueryResult + Send + 'static,
    {
        self.write(move |w| {
            Box::pin(async move { Ok(M::find_by_statement(statement).one(w).await?) })
        })
        .await
    }

    /// `create`: inserts, or — when the id exists with the same owner —
    /// updates status, options, integration and externalEvents (the seed's
    /// upsert). Parent, root and depth are derived from `parent_execution_id`.
    pub async fn create(&self, input: CreateExecution, scope: &Scope) -> StoreResult<Execution> {
        if let Some(id) = &input.id {
            validate::id("id", id)?;
        }
        validate::id("flowId", &input.flow_id)?;
        validate::id("ownerId", &input.owner_id)?;
        if let Some(owner) = scope.owner() {
            if owner != input.owner_id {
                return Err(StoreError::Forbidden(
                    "a user may only create executions it owns".into(),
                ));
            }
        }
        let id = input
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());

        let (root_id, depth) = match &input.parent_execution_id {
            None => (id.clone(), 0),
            Some(parent_id) => {
                validate::id("parentExecutionId", parent_id)?;
                if *parent_id == id {
                    return Err(StoreError::invalid(
                        "parentExecutionId",
                        "an execution cannot be its own parent",
                    ));
                }
                let mut sql = Sql::new(
                    "SELECT root_execution_id, execution_depth FROM executions WHERE id = ",
                );
                let p = sql.bind(parent_id.clone());
                sql.push(&p).scope("owner_id", scope);
                let parent = ParentInfo::find_by_statement(sql.build(self.backend()))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| unknown_parent(parent_id))?;
                (parent.root_execution_id, parent.execution_depth + 1)
            }
        };

        let now = now();
        let status = input.status.unwrap_or(ExecutionStatus::Created);
        let (started_at, completed_at) = default_times(status, None, None, now);
        let mut sql = Sql::new("INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, started_at, completed_at, options, integration, external_events, failure_count) VALUES (");
        let values = [
            sql.bind(id.clone()),
            sql.bind(input.flow_id),
            sql.bind(input.owner_id),
            sql.bind(root_id),
            sql.bind(input.parent_execution_id.clone()),
            sql.bind(status.as_str()),
            sql.bind(depth),
            sql.bind(now),
            sql.bind(now),
            sql.bind(started_at),
            sql.bind(completed_at),
            sql.bind(input.options),
            sql.bind(input.integration),
            sql.bind(input.external_events),
        ];
        sql.push(&values.join(", ")).push(
            ", 0) ON CONFLICT (id) DO UPDATE SET \
             status = excluded.status, options = excluded.options, \
             integration = excluded.integration, external_events = excluded.external_events, \
             updated_at = excluded.updated_at, \
             started_at = COALESCE(executions.started_at, excluded.started_at), \
             completed_at = COALESCE(executions.completed_at, excluded.completed_at) \
             WHERE executions.owner_id = excluded.owner_id RETURNING *",
        );
        let row = match self.write_row::<Execution>(sql.build(self.backend())).await {
            Err(StoreError::Database(e)) if is_foreign_key_violation(&e) => {
                let parent = input.parent_execution_id.unwrap_or_default();
                return Err(unknown_parent(&parent));
            }
            other => other?,
        };
        let execution = row.ok_or_else(|| {
            StoreError::Conflict(format!(
                "execution {id} exists and belongs to another owner"
            ))
        })?;
        self.created(std::slice::from_ref(&execution), now);
        Ok(execution)
    }

    /// After executions were created (or updated, for an existing id) at
    /// `at`: an existing one set back to CREATED (its stamp is older) is
    /// back in the queue; queue heads past the oldest CREATED one are
    /// forgotten and waiting workers woken.
    pub(super) fn created(&self, executions: &[Execution], at: DateTime<Utc>) {
        let waiting = executions
            .iter()
            .filter(|e| e.status == ExecutionStatus::Created);
        if waiting.clone().any(|e| e.created_at != at) {
            self.events.requeued();
        }
        if let Some(oldest) = waiting.map(|e| (e.created_at, e.id.clone())).min() {
            self.heads.created(&oldest);
            self.events.signal_work();
        }
        self.events.committed();
    }

    /// `get`.
    pub async fn get(&self, id: &str, scope: &Scope) -> StoreResult<Option<Execution>> {
        validate::id("id", id)?;
        let mut sql = Sql::new("SELECT * FROM executions WHERE id = ");
        let p = sql.bind(id.to_owned());
        sql.push(&p).scope("owner_id", scope);
        Self::query_execution(&self.reads, sql).await
    }

    /// Many executions by id in one statement (the parent/root DataLoader).
    pub async fn get_many(&self, ids: &[String], scope: &Scope) -> StoreResult<Vec<Execution>> {
        self.get_many_on(&self.reads, ids, scope).await
    }

    /// `get_many` on a given connection (the event reader reads the primary:
    /// an event's row must be at least as new as the event).
    pub(crate) async fn get_many_on(
        &self,
        connection: &sea_orm::DatabaseConnection,
        ids: &[String],
        scope: &Scope,
    ) -> StoreResult<Vec<Execution>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new("SELECT r.*");
        let filter = sql.owner_filter("x.owner_id", scope);
        sql.per_key(
            self.backend(),
            ids,
            PerKey {
                table: "executions",
                column: "id",
                filter,
                order: "x.id",
                limit: None,
            },
        );
        Self::query_executions(connection, sql).await
    }

    /// `delete`: removes the execution and its whole subtree, with their
    /// claims and recovery history (the schema cascades: foreign keys, and on
    /// PostgreSQL a trigger for the claims). True when it existed.
    pub async fn delete(&self, id: &str, scope: &Scope) -> StoreResult<bool> {
        validate::id("id", id)?;
        // The subtree's DELETED events, parents first, in the deleting
        // transaction (the cascade below logs nothing).
        let mut sql =
            Sql::new("WITH RECURSIVE subtree(id) AS (SELECT id FROM executions WHERE id = ");
        let p = sql.bind(id.to_owned());
        sql.push(&p).scope("owner_id", scope).push(
            " UNION ALL SELECT e.id FROM executions e JOIN subtree s ON e.parent_execution_id = s.id) \
             INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind) \
             SELECT e.root_execution_id, e.id, e.owner_id, 'deleted' \
             FROM executions e JOIN subtree s ON s.id = e.id \
             ORDER BY e.execution_depth, e.created_at, e.id",
        );
        let log = sql.build(self.backend());
        // The schema cascades: deleting the top row removes the subtree
        // (through the parent index), its claims and its recovery history.
        let delete = Statement::from_sql_and_values(
            self.backend(),
            "DELETE FROM executions WHERE id = $1",
            [id.to_owned().into()],
        );
        let deleted = self
            .write(move |w| {
                Box::pin(async move {
                    w.transaction(|txn| {
                        Box::pin(async move {
                            if txn.execute(log).await?.rows_affected() == 0 {
                                return Ok(false);
                            }
                            txn.execute(delete).await?;
                            Ok(true)
                        })
                    })
                    .await
                })
            })
            .await?;
        if !deleted {
            return Ok(false);
        }
        self.events.committed();
        Ok(true)
    }

    /// `updateExecutionStatus`.
    pub async fn update_execution_status(
        &self,
        update: StatusUpdate,
        scope: &Scope,
    ) -> StoreResult<Execution> {
        validate::id("executionId", &update.execution_id)?;
        if let Some(count) = update.failure_count {
            validate::non_negative("failureCount", count)?;
        }
        for (field, value) in [
            ("errorNodeId", &update.error_node_id),
            ("processingWorkerId", &update.processing_worker_id),
        ] {
            if let Some(value) = value {
                validate::id(field, value)?;
            }
        }
        let now = now();
        let (started_at, completed_at) = default_times(
            update.status,
            update.started_at.map(truncate_micros),
            update.completed_at.map(truncate_micros),
            now,
        );
        let mut sql = Sql::new("UPDATE executions SET status = ");
        let status = sql.bind(update.status.as_str());
        let updated = sql.bind(now);
        let mut sets = vec![format!("{status}, updated_at = {updated}")];
        let mut keep = |column: &str, value: sea_orm::Value| {
            let p = sql.bind(value);
            sets.push(format!("{column} = COALESCE({p}, {column})"));
        };
        keep("error_message", update.error_message.into());
        keep("error_node_id", update.error_node_id.into());
        keep("started_at", started_at.into());
        keep("completed_at", completed_at.into());
        keep(
            "processing_started_at",
            update
                .processing_started_at
                .map(super::truncate_micros)
                .into(),
        );
        keep("processing_worker_id", update.processing_worker_id.into());
        keep("failure_count", update.failure_count.into());
        keep("last_failure_reason", update.last_failure_reason.into());
        keep(
            "last_failure_at",
            update.last_failure_at.map(truncate_micros).into(),
        );
        let sets = sets.join(", ");
        sql.push(&sets).push(" WHERE id = ");
        let p = sql.bind(update.execution_id.clone());
        sql.push(&p).scope("owner_id", scope).push(" RETURNING *");
        let execution = self
            .write_row::<Execution>(sql.build(self.backend()))
            .await?
            .ok_or_else(|| StoreError::not_found("execution", &update.execution_id))?;
        if execution.status == ExecutionStatus::Created {
            // Possibly back in the queue.
            self.events.requeued();
        }
        self.events.changed(&execution);
        Ok(execution)
    }

    /// `updateFailureInfo`: false when the execution does not exist.
    pub async fn update_failure_info(
        &self,
        execution_id: &str,
        failure_count: i32,
        reason: &str,
        scope: &Scope,
    ) -> StoreResult<bool> {
        validate::id("executionId", execution_id)?;
        validate::non_negative("failureCount", failure_count)?;
        let now = now();
        let mut sql = Sql::new("UPDATE executions SET failure_count = ");
        let values = [
            sql.bind(failure_count),
            sql.bind(reason.to_owned()),
            sql.bind(now),
            sql.bind(now),
            sql.bind(execution_id.to_owned()),
        ];
        sql.push(&format!(
            "{}, last_failure_reason = {}, last_failure_at = {}, updated_at = {} WHERE id = {}",
            values[0], values[1], values[2], values[3], values[4]
        ))
        .scope("owner_id", scope)
        .push(" RETURNING *");
        let updated = self
            .write_row::<Execution>(sql.build(self.backend()))
            .await?;
        Ok(match updated {
            Some(execution) => {
                self.events.changed(&execution);
                true
            }
            None => false,
        })
    }

    /// `getChildExecutions`: direct children, oldest first.
    pub async fn get_child_executions(
        &self,
        parent_id: &str,
        scope: &Scope,
    ) -> StoreResult<Vec<Execution>> {
        validate::id("parentExecutionId", parent_id)?;
        let mut sql = Sql::new("SELECT * FROM executions WHERE parent_execution_id = ");
        let p = sql.bind(parent_id.to_owned());
        sql.push(&p)
            .scope("owner_id", scope)
            .push(" ORDER BY created_at, id");
        Self::query_executions(&self.reads, sql).await
    }
}

fn unknown_parent(parent_id: &str) -> StoreError {
    StoreError::invalid(
        "parentExecutionId",
        format!("no execution with id {parent_id}"),
    )
}
