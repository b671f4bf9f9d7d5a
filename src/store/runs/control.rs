//! Runs under control: cancel, pause and resume a subtree, put a run's
//! failed executions back in the queue. Each is one write (one transaction;
//! on SQLite one write of a commit group); each execution it changes is one
//! event.

use super::Runs;
use crate::store::db::{now, run, validate, Effects, Scope, Slots, StoreError, StoreResult};
use crate::store::sql::Control;
use entity::ExecutionStatus;

impl Runs {
    /// `cancelExecution`: the execution and everything below it that is not
    /// finished become STOPPED (`completedAt`, `errorMessage` = `reason`);
    /// how many. From the answer on none of them is handed out or
    /// claimable; a worker holding one learns it at its next heartbeat
    /// (`CANCELLED`) and its finish is refused.
    pub async fn cancel(&self, id: &str, reason: Option<&str>, scope: &Scope) -> StoreResult<u64> {
        validate::id("id", id)?;
        let reason = reason.unwrap_or("cancelled").to_owned();
        let sql = self.db.sql();
        let action = Action {
            sql: &sql.cancel,
            then: Some(sql.release_claims_of),
            requeues: false,
            frees_slots: true,
        };
        self.control(action, id, vec![reason.into()], scope).await
    }

    /// `pauseExecution`: the execution and its subtree are marked paused;
    /// their queued executions become PAUSED (held ones run on, and an
    /// execution created under a paused one is created PAUSED); how many
    /// changed.
    pub async fn pause(&self, id: &str, scope: &Scope) -> StoreResult<u64> {
        validate::id("id", id)?;
        let action = Action {
            sql: &self.db.sql().pause,
            then: None,
            requeues: false,
            // Paused executions keep the slots they hold.
            frees_slots: false,
        };
        self.control(action, id, Vec::new(), scope).await
    }

    /// `resumeExecution`: the mark goes, and the subtree's PAUSED executions
    /// are claimable again in their old order; how many changed.
    pub async fn resume(&self, id: &str, scope: &Scope) -> StoreResult<u64> {
        validate::id("id", id)?;
        let action = Action {
            sql: &self.db.sql().resume,
            then: None,
            requeues: true,
            frees_slots: true,
        };
        self.control(action, id, Vec::new(), scope).await
    }

    /// `retryExecutions`: the run's executions in `statuses` (finished ones:
    /// FAILED by default) go back to the queue, due now, their failure
    /// counts kept; how many.
    pub async fn retry_executions(
        &self,
        root_execution_id: &str,
        statuses: &[ExecutionStatus],
        scope: &Scope,
    ) -> StoreResult<u64> {
        validate::id("rootExecutionId", root_execution_id)?;
        if statuses.is_empty() || statuses.iter().any(|s| !s.is_terminal()) {
            return Err(StoreError::invalid(
                "status",
                "name finished statuses (COMPLETED, FAILED, STOPPED) to put back",
            ));
        }
        let slots = ExecutionStatus::ALL.map(|status| {
            statuses
                .contains(&status)
                .then(|| status.as_str().to_owned())
                .into()
        });
        let action = Action {
            sql: &self.db.sql().retry_executions,
            then: None,
            requeues: true,
            frees_slots: true,
        };
        self.control(action, root_execution_id, Vec::from(slots), scope)
            .await
    }

    /// Runs a control's steps, taking (id, owner, now, then `more`), and
    /// then `then` on the ids they changed; how many executions it changed.
    /// None changed: `NOT_FOUND` when the execution does not
    /// exist for `scope` (a user naming another's run learns nothing more),
    /// else 0 (there was nothing to change).
    async fn control(
        &self,
        action: Action,
        id: &str,
        more: Vec<sea_orm::Value>,
        scope: &Scope,
    ) -> StoreResult<u64> {
        let mut values = vec![id.to_owned().into(), scope.param(), now().into()];
        values.extend(more);
        let changed = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    // One transaction: on PostgreSQL the rows stay locked
                    // from the first pass until they are written.
                    let ids = w
                        .transaction(move |txn| {
                            Box::pin(async move {
                                let sql = action.sql;
                                let mut values = values;
                                if let Some(lock) = sql.lock {
                                    let key = values[..3].to_vec();
                                    let locked = ids_of(&run::steps(txn, &[lock], key).await?)?;
                                    if locked.is_empty() {
                                        return Ok(locked);
                                    }
                                    values.push(run::json_list(&locked).into());
                                }
                                let ids = ids_of(&run::steps(txn, &[sql.write], values).await?)?;
                                if let (Some(then), false) = (action.then, ids.is_empty()) {
                                    let ids = vec![run::json_list(&ids).into()];
                                    run::steps(txn, &[then], ids).await?;
                                }
                                Ok(ids)
                            })
                        })
                        .await?;
                    let changed = ids.len() as u64;
                    // Put back or resumed: work for waiting workers and a
                    // requeue for the queue heads; stopped or paused: logged.
                    let effects = match changed {
                        0 => Effects::none(),
                        _ => Effects::logged().requeued_if(action.requeues),
                    };
                    Ok((changed, effects))
                })
            })
            .await?;
        if changed == 0 {
            let found = self.db.stmt(
                self.db.sql().execution,
                [id.to_owned().into(), scope.param()],
            );
            if run::execution(self.db.primary(), found).await?.is_none() {
                return Err(StoreError::not_found("execution", id));
            }
        } else if action.frees_slots {
            self.admit_in_run_of(id).await;
        }
        Ok(changed)
    }

    /// After a control of `id`'s subtree that may have freed slots or made
    /// executions wait for them: an admission to its run and to every key
    /// with a limit (there are few; which keys the subtree has is not read).
    async fn admit_in_run_of(&self, id: &str) {
        let found = self.db.stmt(
            self.db.sql().execution,
            [id.to_owned().into(), Scope::All.param()],
        );
        match run::execution(self.db.primary(), found).await {
            Ok(e) => {
                let root = e.map_or_else(|| id.to_owned(), |e| e.root_execution_id);
                self.admit_in_run(&root).await
            }
            Err(err) => tracing::warn!(error = %err, "could not find the slots a control freed"),
        }
    }

    /// An admission to run `root` and to every key with a limit.
    pub(super) async fn admit_in_run(&self, root: &str) {
        match self.db.limited_keys().await {
            Ok(keys) => {
                self.db
                    .admit_after(Slots::run_and_every_key(root, keys))
                    .await
            }
            Err(err) => tracing::warn!(error = %err, "could not find the slots a control freed"),
        }
    }
}

/// What a control runs: its statements (see `sql::Control`), a statement
/// then given the ids they changed (a JSON array as `$1`), and whether what
/// it changes goes back in the queue.
struct Action {
    sql: &'static Control,
    then: Option<&'static str>,
    requeues: bool,
    /// It may free slots of its run or keys, or make executions wait for
    /// them: an admission follows it.
    frees_slots: bool,
}

/// The first column of each row: the ids a statement returned.
fn ids_of(rows: &[sea_orm::QueryResult]) -> StoreResult<Vec<String>> {
    Ok(rows
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<Vec<_>, _>>()?)
}
