//! `finishExecution(s)`: the end of a worker's round.

use std::collections::{HashMap, HashSet};

use sea_orm::FromQueryResult;
use serde_json::{json, Value};

use super::{Finish, FinishOutcome, Queue};
use chrono::{DateTime, Utc};

use crate::store::db::{
    check_retry_in, jitter, now, run, time_text, validate, AfterFailure, Effects, Scope, Slots,
    StoreError, StoreResult,
};
use entity::execution::Model as Execution;
use entity::ExecutionStatus;

#[derive(FromQueryResult)]
struct Id {
    id: String,
}

/// One retry of a finish, decided.
struct Retry {
    /// When it is due again (None: it ran out of attempts).
    at: Option<DateTime<Utc>>,
    /// The error message it ends with, when it ran out.
    exhausted: Option<String>,
    max_attempts: i32,
}

impl Queue {
    /// `finishExecution`: the end of a worker's round, in one atomic write by
    /// the holder of a live claim. Sets the final status (or CREATED, to be
    /// retried, counting the failure), stamps the time, and releases the
    /// claim. Refused (`Conflict`) for anyone else and once the lease lapsed.
    /// One item of `finish_many`.
    pub async fn finish_execution(&self, finish: Finish) -> StoreResult<Execution> {
        let id = finish.execution_id.clone();
        let worker = finish.worker_id.clone();
        let outcome = self.finish_many(vec![finish]).await?.pop();
        match outcome {
            Some(FinishOutcome {
                execution: Some(execution),
                ..
            }) => Ok(execution),
            Some(FinishOutcome {
                refusal: Some("NOT_FOUND"),
                ..
            }) => Err(StoreError::not_found("execution", id)),
            _ => Err(StoreError::Conflict(format!(
                "execution {id} has no live claim held by worker {worker}"
            ))),
        }
    }

    /// `finishExecutions`: each item as `finishExecution` would, in one
    /// statement (PostgreSQL) or one write transaction (SQLite); an item
    /// whose worker holds no live claim changes nothing and says why.
    pub async fn finish_many(&self, items: Vec<Finish>) -> StoreResult<Vec<FinishOutcome>> {
        self.finish_held(items, false).await
    }

    /// `finish_many`, or, `at_node_deadline`, the deadline timer's finish of
    /// executions held past their node deadline: their claims were live at
    /// it (capped there, they have lapsed since).
    pub(super) async fn finish_held(
        &self,
        items: Vec<Finish>,
        at_node_deadline: bool,
    ) -> StoreResult<Vec<FinishOutcome>> {
        validate::batch("inputs", items.len())?;
        let mut seen = HashSet::new();
        for item in &items {
            validate::id("executionId", &item.execution_id)?;
            validate::id("workerId", &item.worker_id)?;
            if let Some(node) = &item.error_node_id {
                validate::id("errorNodeId", node)?;
            }
            if !(item.status == ExecutionStatus::Created || item.status.is_terminal()) {
                return Err(StoreError::invalid(
                    "status",
                    "must be COMPLETED, FAILED, STOPPED, or CREATED (to retry)",
                ));
            }
            if let Some(ms) = item.retry_in_ms {
                check_retry_in(ms)?;
            }
            if !seen.insert(item.execution_id.clone()) {
                return Err(StoreError::invalid(
                    "executionId",
                    format!("{} appears twice in one batch", item.execution_id),
                ));
            }
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let at = now();
        let retries = self.retries(&items, at).await?;
        let input: Vec<Value> = items
            .iter()
            .map(|i| {
                let retry = retries.get(&i.execution_id);
                json!({
                    "execution_id": i.execution_id,
                    "worker_id": i.worker_id,
                    "status": i.status.as_str(),
                    "error_message": i.error_message,
                    "error_node_id": i.error_node_id,
                    "failure_reason": i.failure_reason,
                    "retry_at": retry.and_then(|r| r.at.map(time_text)),
                    "max_attempts": retry.map_or(i32::MAX, |r| r.max_attempts),
                    "exhausted_message": retry.and_then(|r| r.exhausted.clone()),
                    "at_node_deadline": at_node_deadline,
                })
            })
            .collect();
        let values = vec![Value::from(input).to_string().into(), at.into()];
        let steps = self.db.sql().finish_many;
        let finished: Vec<Execution> = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let finished = run::decode_all(&run::steps(w, steps, values).await?)?;
                    // Retried: back in the queue now, or waiting for its time.
                    // Finished for good: their slots are free.
                    let effects = Effects::changed(&finished)
                        .requeued_when(&finished)
                        .admitting(Slots::of(&finished));
                    Ok((finished, effects))
                })
            })
            .await?;
        let mut by_id: HashMap<String, Execution> =
            finished.into_iter().map(|e| (e.id.clone(), e)).collect();
        let missing: Vec<String> = items
            .iter()
            .filter(|i| !by_id.contains_key(&i.execution_id))
            .map(|i| i.execution_id.clone())
            .collect();
        let existing = self.existing(&missing).await?;
        Ok(items
            .into_iter()
            .map(|item| match by_id.remove(&item.execution_id) {
                Some(execution) => FinishOutcome {
                    execution_id: item.execution_id,
                    refusal: None,
                    execution: Some(execution),
                },
                None => FinishOutcome {
                    refusal: Some(if existing.contains(&item.execution_id) {
                        "CONFLICT"
                    } else {
                        "NOT_FOUND"
                    }),
                    execution_id: item.execution_id,
                    execution: None,
                },
            })
            .collect())
    }

    /// What the retries among `items` come to (`db::retry`), by id, from
    /// each execution as it is now: when it is due again, or that it ran
    /// out of attempts. (The statement checks the count again as it writes:
    /// the decision to end it is taken on the row it locks.)
    async fn retries(
        &self,
        items: &[Finish],
        at: DateTime<Utc>,
    ) -> StoreResult<HashMap<String, Retry>> {
        let ids: Vec<String> = items
            .iter()
            .filter(|i| i.status == ExecutionStatus::Created)
            .map(|i| i.execution_id.clone())
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self.db.stmt(
            self.db.sql().executions_by_ids,
            [run::json_list(&ids).into(), Scope::All.param()],
        );
        let rows: Vec<Execution> = run::executions(self.db.primary(), rows).await?;
        let rows: HashMap<&str, &Execution> = rows.iter().map(|e| (e.id.as_str(), e)).collect();
        let policy = self.db.retry_policy();
        let mut retries = HashMap::with_capacity(ids.len());
        for item in items
            .iter()
            .filter(|i| i.status == ExecutionStatus::Created)
        {
            let Some(row) = rows.get(item.execution_id.as_str()) else {
                continue;
            };
            let options = row.options.as_ref();
            let next = policy.after_failure(
                options,
                row.failure_count + 1,
                item.retry_in_ms,
                at,
                jitter(),
            );
            let (at, exhausted) = match next {
                AfterFailure::Retry { at } => (Some(at), None),
                AfterFailure::Exhausted { message } => (None, Some(message)),
            };
            retries.insert(
                item.execution_id.clone(),
                Retry {
                    at,
                    exhausted,
                    max_attempts: policy.max_attempts(options),
                },
            );
        }
        Ok(retries)
    }

    /// Which of `ids` exist.
    pub(super) async fn existing(&self, ids: &[String]) -> StoreResult<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let existing = self
            .db
            .stmt(self.db.sql().existing, [run::json_list(ids).into()]);
        let rows: Vec<Id> = run::models(self.db.primary(), existing).await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }
}
