//! Concurrency limits: admission to the slots of a run (its root's
//! `maxConcurrency`) and of a key (`setConcurrencyLimit`).
//!
//! An execution limited by its run or its key is created waiting (out of
//! the fresh queue, under a lease that never lapses) and is handed out only
//! once admitted: a slot of its run first, then one of its key. The slots
//! in use are never stored; they are counted, under a lock of the run's root
//! or the key's limit, among the unfinished executions that hold one
//! (`executions_run_holders`, `_key_holders`). So whatever path ends an
//! execution (finish, status update, cancel, delete, timeout) its slot is
//! free the moment it commits, and no count can drift. What each such path
//! must do is ask for an admission after it, so the next waiting execution
//! is claimable at once: a write names the slots in its `Effects`
//! (`Effects::admitting`) and `Db::write` admits to them in the same commit
//! group on SQLite (one writer) and in a transaction of its own right after
//! the commit on PostgreSQL, exact by itself there: it counts what has
//! committed. Pulls never look at slots: work at its limit is not in the
//! queue they read.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::ConnectionTrait;

use super::effects::Effects;
use super::error::StoreResult;
use super::handle::Db;
use super::run;
use super::values::now;
use crate::store::sql::{Admit, Statements};
use entity::execution::{Model as Execution, WAITING_FOR_KEY, WAITING_FOR_RUN};

/// The runs (by root id) and keys whose waiting executions may be admitted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Slots {
    runs: BTreeSet<String>,
    keys: BTreeSet<String>,
}

impl Slots {
    pub fn run(&mut self, root: &str) {
        self.runs.insert(root.to_owned());
    }

    pub fn key(&mut self, key: &str) {
        self.keys.insert(key.to_owned());
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.keys.is_empty()
    }

    /// The slots `executions` may have freed (those finished now) or ask
    /// for (those waiting).
    pub fn of<'a>(executions: impl IntoIterator<Item = &'a Execution>) -> Self {
        let mut slots = Self::default();
        for e in executions {
            let ended = e.status.is_terminal();
            let run_limited = e.max_concurrency.is_some() && e.parent_execution_id.is_some();
            if run_limited && (ended || e.waiting == WAITING_FOR_RUN) {
                slots.run(&e.root_execution_id);
            }
            if let Some(key) = &e.concurrency_key {
                if ended || e.waiting == WAITING_FOR_KEY {
                    slots.key(key);
                }
            }
        }
        slots
    }

    /// `run`'s slots and those of every key with a limit: what a control of
    /// a subtree (cancel, resume, retry, delete) may have freed or asked
    /// for, without reading which keys its executions have.
    pub fn run_and_every_key(run: &str, keys: Vec<String>) -> Self {
        let mut slots = Self::default();
        slots.run(run);
        slots.keys.extend(keys);
        slots
    }
}

#[derive(sea_orm::FromQueryResult)]
struct WaitingRow {
    kind: i32,
    key: String,
}

#[derive(sea_orm::FromQueryResult)]
struct LimitRow {
    key: String,
    max_running: i32,
    running: i64,
}

/// A key's limit and how many of its executions hold a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConcurrencyLimit {
    pub key: String,
    pub limit: i32,
    pub running: i64,
}

/// The admission itself, in `txn` (see `Db::admit`): the runs' roots and
/// then the keys' limits locked (PostgreSQL), each run's waiting admitted,
/// then each key's (those just admitted to a run that wait for their key
/// among them). Returns the executions admitted.
pub(super) async fn admit_in(
    txn: &sea_orm::DatabaseTransaction,
    sql: &'static Statements,
    backend: sea_orm::DbBackend,
    slots: Slots,
) -> StoreResult<Vec<Execution>> {
    let at = now();
    let statement = |text: &str, values: Vec<sea_orm::Value>| run::statement(backend, text, values);
    let admit = async |how: &Admit, of: &BTreeSet<String>| -> StoreResult<Vec<Execution>> {
        let texts: Vec<(&str, sea_orm::Value)> = match how {
            Admit::AllAtOnce(text) => {
                let all: Vec<String> = of.iter().cloned().collect();
                vec![(*text, run::json_list(&all).into())]
            }
            Admit::EachOne(text) => of.iter().map(|one| (*text, one.into())).collect(),
        };
        let mut admitted = Vec::new();
        for (text, slot) in texts {
            let admit = statement(text, vec![slot, at.into()]);
            admitted.extend(run::executions::<_, Execution>(txn, admit).await?);
        }
        Ok(admitted)
    };
    let mut admitted: BTreeMap<String, Execution> = BTreeMap::new();
    if let (Some(lock), false) = (sql.lock_runs, slots.runs.is_empty()) {
        let runs: Vec<String> = slots.runs.iter().cloned().collect();
        txn.execute(statement(lock, vec![run::json_list(&runs).into()]))
            .await?;
    }
    if !slots.runs.is_empty() {
        for e in admit(&sql.admit_runs, &slots.runs).await? {
            admitted.insert(e.id.clone(), e);
        }
    }
    let mut keys = slots.keys;
    keys.extend(admitted.values().filter_map(|e| {
        (e.waiting == WAITING_FOR_KEY)
            .then(|| e.concurrency_key.clone())
            .flatten()
    }));
    if let (Some(lock), false) = (sql.lock_keys, keys.is_empty()) {
        let keys: Vec<String> = keys.iter().cloned().collect();
        txn.execute(statement(lock, vec![run::json_list(&keys).into()]))
            .await?;
    }
    if !keys.is_empty() {
        for e in admit(&sql.admit_keys, &keys).await? {
            admitted.insert(e.id.clone(), e);
        }
    }
    Ok(admitted.into_values().collect())
}

/// An admission after a committed write failed: logged, not answered, and
/// `slots` kept for the janitor's next round.
pub(super) fn admission_failed(
    unadmitted: &std::sync::Mutex<Slots>,
    err: &super::error::StoreError,
    slots: Slots,
) {
    tracing::warn!(error = %err, "an admission to freed slots failed; the janitor's next round retries it");
    let mut unadmitted = unadmitted.lock().unwrap_or_else(|e| e.into_inner());
    unadmitted.runs.extend(slots.runs);
    unadmitted.keys.extend(slots.keys);
}

/// What an admission's write changed: executions back in the queue.
pub(super) fn admitted_effects(admitted: &[Execution]) -> Effects {
    Effects::changed(admitted).requeued_when(admitted)
}

impl Db {
    /// Admits the waiting executions of `slots` that their limits leave
    /// room for, in hand-out order, in one write of its own (runs first;
    /// the admitted that wait next for a key's slot are admitted to it in
    /// the same write when there is room), and wakes the workers waiting for
    /// work. Nothing is read when `slots` is empty.
    pub(crate) async fn admit(&self, slots: Slots) -> StoreResult<()> {
        if slots.is_empty() {
            return Ok(());
        }
        let sql = self.sql();
        let backend = self.backend();
        self.write_then_announce(move |w| {
            Box::pin(async move {
                let admitted = w
                    .transaction(move |txn| Box::pin(admit_in(txn, sql, backend, slots)))
                    .await?;
                Ok(((), admitted_effects(&admitted)))
            })
        })
        .await?;
        Ok(())
    }

    /// `admit`, after a write that has committed (and is answered as
    /// such): an admission that fails is logged, not answered. Its waiting
    /// executions wait for the next admission of that run or key (the next
    /// slot freed, or the janitor's round).
    pub(crate) async fn admit_after(&self, slots: Slots) {
        if slots.is_empty() {
            return;
        }
        if let Err(err) = self.admit(slots.clone()).await {
            admission_failed(&self.unadmitted, &err, slots);
        }
    }

    /// The janitor's part, each round: the admissions that failed since its
    /// last round, and every run and key with waiting executions. That
    /// admits what no write's own admission could: after a process stopped
    /// between a write and its admission, or when an admission skipped a
    /// waiting execution another write held at that moment (a worker's
    /// finish or heartbeat naming it, which changes nothing). It reads the
    /// indexes of waiting executions whole, once a round.
    /// (An error is the read's; the admission's own are handled as
    /// `admit_after` handles them.)
    pub(crate) async fn admit_left_over(&self) -> StoreResult<()> {
        let waiting = self.stmt(self.sql().waiting_runs, []);
        let rows: Vec<WaitingRow> = run::models(self.primary(), waiting).await?;
        // Taken only once the read has succeeded: a failed read keeps them.
        let mut slots =
            std::mem::take(&mut *self.unadmitted.lock().unwrap_or_else(|e| e.into_inner()));
        for row in rows {
            match row.kind {
                1 => slots.run(&row.key),
                _ => slots.key(&row.key),
            }
        }
        self.admit_after(slots).await;
        Ok(())
    }

    /// Every key with a limit.
    pub(crate) async fn limited_keys(&self) -> StoreResult<Vec<String>> {
        Ok(self
            .concurrency_limits(None)
            .await?
            .into_iter()
            .map(|l| l.key)
            .collect())
    }

    /// `concurrencyLimits`: every key's limit (or `key`'s), in key order.
    pub(crate) async fn concurrency_limits(
        &self,
        key: Option<&str>,
    ) -> StoreResult<Vec<ConcurrencyLimit>> {
        let read = self.stmt(
            self.sql().concurrency_limits,
            [key.map(str::to_owned).into()],
        );
        let rows: Vec<LimitRow> = run::models(self.primary(), read).await?;
        Ok(rows
            .into_iter()
            .map(|r| ConcurrencyLimit {
                key: r.key,
                limit: r.max_running,
                running: r.running,
            })
            .collect())
    }

    /// `setConcurrencyLimit`: key `key` allows `limit` executions at once
    /// (None: no limit). Setting it counts the key's unfinished executions
    /// against it (the queued ones wait for a slot); removing it lets its
    /// waiting executions into the queue. Then what there is room for is
    /// admitted. Answers the key's limit as it is now (None: removed).
    pub(crate) async fn set_concurrency_limit(
        &self,
        key: &str,
        limit: Option<i32>,
    ) -> StoreResult<Option<ConcurrencyLimit>> {
        let sql = self.sql();
        let backend = self.backend();
        let owned = key.to_owned();
        self.write(move |w| {
            Box::pin(async move {
                let freed = w
                    .transaction(move |txn| {
                        Box::pin(async move {
                            let key = || sea_orm::Value::from(owned.clone());
                            let statement = |text: &str, values: Vec<sea_orm::Value>| {
                                run::statement(backend, text, values)
                            };
                            match limit {
                                // The key's executions first, then its limit's
                                // row: an admission holds a root's row and
                                // then waits for the limit's; taken the other
                                // way round, a root with this key would close
                                // a cycle.
                                Some(limit) => {
                                    txn.execute(statement(sql.key_limited, vec![key()])).await?;
                                    txn.execute(statement(
                                        sql.set_limit,
                                        vec![key(), limit.into()],
                                    ))
                                    .await?;
                                    Ok(Vec::new())
                                }
                                None => {
                                    txn.execute(statement(sql.remove_limit, vec![key()]))
                                        .await?;
                                    let free =
                                        statement(sql.key_unlimited, vec![key(), now().into()]);
                                    run::executions::<_, Execution>(txn, free).await
                                }
                            }
                        })
                    })
                    .await?;
                // The key's executions were rewritten (and logged) either way.
                let effects = match freed.is_empty() {
                    true => Effects::logged(),
                    false => Effects::changed(&freed).requeued_when(&freed),
                };
                Ok(((), effects))
            })
        })
        .await?;
        if limit.is_some() {
            let mut slots = Slots::default();
            slots.key(key);
            self.admit_after(slots).await;
        }
        Ok(self.concurrency_limits(Some(key)).await?.pop())
    }
}
