//! The statement table: every SQL statement of the store, whole, one file per
//! operation and backend (`postgres/`, `sqlite/`, and `shared/` for a text
//! both run as it is), loaded at build time. The store picks one table when
//! it connects ([`Statements::of`]), so the code of an operation never asks
//! which backend it runs on: it runs the table's statement, or steps.
//!
//! Where a shape must vary, it varies by parameters or by a named variant,
//! never by text glued together at run time:
//! - the owner scope is a parameter of every read (`$n IS NULL OR owner_id =
//!   $n`), so no statement can be sent without it; the level loads of a
//!   tree, whose index-only plans the parameter would cost, come in two
//!   variants chosen by the scope ([`Scoped`]);
//! - a set of statuses is one slot per status (null: not asked);
//! - optional bounds (a cursor, a time window, a limit) are parameters with
//!   a value that bounds nothing when absent;
//! - shapes the planner must see differently are variants: a flow or not, a
//!   queue head or not, one owner's index or every owner's.
//!
//! Two slots are filled in by the store, with values it makes itself:
//! `{limit}`, the pull's limit (an integer; a bound limit made PostgreSQL plan
//! every pull anew), and `{columns}`, the columns a read of the tree fast
//! path selects (names from the table's own column list; see `db::rows`).
//!
//! Where SQLite needs several statements for what PostgreSQL does in one (it
//! has no data-modifying CTEs), the entry is a list of [`Steps`]: run in
//! order in one write, each step after the first given the ids the one
//! before it returned (see `db::run::steps`).

/// Statements run in order in one write; one on PostgreSQL.
pub type Steps = &'static [&'static str];

/// A run control (cancel, pause, resume, retry). On PostgreSQL cancel,
/// pause and resume first lock the rows they will change, waiting for them
/// in id order as every other path that locks many executions does (so no
/// two of them deadlock): `lock` takes (id, owner, now) and returns their
/// ids, and `write` takes (id, owner, now, the control's own values, then
/// the JSON array of those ids). Retry, and every control on SQLite (one
/// writer), has no `lock`: `write` finds its rows itself.
pub struct Control {
    pub lock: Option<&'static str>,
    pub write: &'static str,
}

/// An admission to the slots of runs or keys (`db::slots`), taking the
/// slots and the time: all at once (PostgreSQL: `$1` a JSON array of them,
/// each read by a LATERAL of its own) or one statement per slot (SQLite:
/// `$1` the run or key; statements in the process cost no round trip).
pub enum Admit {
    AllAtOnce(&'static str),
    EachOne(&'static str),
}

impl Admit {
    #[cfg(test)]
    pub fn text(&self) -> &'static str {
        match self {
            Admit::AllAtOnce(text) | Admit::EachOne(text) => text,
        }
    }
}

/// A read in two variants: for every owner, and for one owner. Where the
/// owner parameter would cost the read its index-only plan (the level loads
/// of a tree), the variant is chosen by the scope; both take the owner as
/// `$2` (the first ignores it).
pub struct Scoped {
    pub all: &'static str,
    pub owner: &'static str,
}

impl Scoped {
    /// The variant for the scope's owner (None: every owner).
    pub fn of(&self, owner: Option<&str>) -> &'static str {
        match owner {
            Some(_) => self.owner,
            None => self.all,
        }
    }
}

macro_rules! pg {
    ($file:literal) => {
        include_str!(concat!("postgres/", $file))
    };
}
macro_rules! lite {
    ($file:literal) => {
        include_str!(concat!("sqlite/", $file))
    };
}
macro_rules! both {
    ($file:literal) => {
        include_str!(concat!("shared/", $file))
    };
}

/// One backend's statements. Parameters are `$1`, `$2` … in the order each
/// file's header names them; both backends take the same parameters for the
/// same entry.
pub struct Statements {
    // ------------------------------------------------------------ runs
    /// createExecution(s) as one insert of arrays (PostgreSQL; `None`: the
    /// upsert does it all).
    pub insert_new: Option<&'static str>,
    pub upsert_many: &'static str,
    pub update_status: &'static str,
    pub update_failure_info: &'static str,
    pub cancel: Control,
    pub pause: Control,
    pub resume: Control,
    pub release_claims_of: &'static str,
    pub retry_executions: Control,
    pub delete_log: &'static str,
    pub delete_execution: &'static str,
    pub finished_runs: &'static str,
    pub delete_runs: &'static str,
    pub oldest_finished_run: &'static str,
    /// Taken by the one retention process of a cluster (PostgreSQL).
    pub retention_lock: Option<&'static str>,
    /// Flow timeouts: the roots the deadline timer is to look at by a time,
    /// the first such time, a root's time moved.
    pub flow_deadlines: &'static str,
    pub next_deadline: &'static str,
    pub move_deadline: &'static str,

    // ----------------------------------------------------- concurrency
    /// The keys of a JSON array that have a limit (creates).
    pub limited_keys: &'static str,
    /// Admission (`db::slots`). On PostgreSQL the runs' roots and then the
    /// keys' limits are locked first (`None` on SQLite: one writer); then
    /// each run and each key admits its waiting executions.
    pub lock_runs: Option<&'static str>,
    pub lock_keys: Option<&'static str>,
    pub admit_runs: Admit,
    pub admit_keys: Admit,
    /// `setConcurrencyLimit` (set, or removed) and `concurrencyLimits`.
    pub set_limit: &'static str,
    pub key_limited: &'static str,
    pub remove_limit: &'static str,
    pub key_unlimited: &'static str,
    pub concurrency_limits: &'static str,
    /// The runs with executions waiting for a slot (the janitor's first
    /// round).
    pub waiting_runs: &'static str,

    // ----------------------------------------------------------- queue
    pub claim: Steps,
    /// Pulls from the start of the queue: of any flow, of one flow.
    pub pull: [Steps; 2],
    /// Pulls after a queue head, as `pull` (PostgreSQL; `None`: no heads,
    /// see `db::heads`).
    pub pull_after: Option<[Steps; 2]>,
    pub return_lapsed: &'static str,
    pub promote_due: &'static str,
    pub next_due: &'static str,
    /// Node timeouts: the executions held past their node deadline, and the
    /// stale deadlines cleared (`queue::node_timeouts`).
    pub node_deadlines: &'static str,
    pub clear_node_deadlines: &'static str,
    pub release: Steps,
    pub finish_many: Steps,
    pub extend_many: Steps,
    pub existing: &'static str,
    pub expire_old_claims: &'static str,
    pub execution_status: &'static str,
    pub needing_recovery: &'static str,
    pub record_recovery: &'static str,
    pub acquire_recovery_lock: &'static str,
    pub release_recovery_lock: &'static str,

    // ----------------------------------------------------------- reads
    pub execution: &'static str,
    pub executions_by_ids: &'static str,
    pub children: Scoped,
    pub child_counts: Scoped,
    pub tree: &'static str,
    pub tree_shapes: &'static str,
    pub roots_by_status: &'static str,
    pub owner_roots: &'static str,
    pub child_feed: &'static str,
    pub direct_child_feed: &'static str,
    pub direct_child_feed_by_status: &'static str,
    pub flows: &'static str,
    pub owner_flows: &'static str,
    pub ancestors: &'static str,
    pub execution_stats: &'static str,
    pub active_claims: &'static str,
    pub claims_by_execution: &'static str,
    pub recovery_by_execution: &'static str,
    pub queue_depth: &'static str,

    // ---------------------------------------------------------- events
    pub log_head: &'static str,
    pub log_tail: &'static str,
    pub root_events: &'static str,
    pub root_positions: &'static str,
    pub log_pruned: &'static str,
    pub log_oldest: &'static str,
    pub log_prune: &'static str,
    pub log_record_pruned: &'static str,
    pub log_stats: &'static str,
    /// Taken by the one pruner of a cluster (PostgreSQL).
    pub janitor_lock: Option<&'static str>,
    /// Wakes other processes (PostgreSQL; `None`: one process per database).
    pub notify: Option<&'static str>,
}

pub static POSTGRES: Statements = Statements {
    insert_new: Some(pg!("insert_new.sql")),
    upsert_many: pg!("upsert_many.sql"),
    update_status: both!("update_status.sql"),
    update_failure_info: both!("update_failure_info.sql"),
    cancel: Control {
        lock: Some(pg!("cancel_lock.sql")),
        write: pg!("cancel.sql"),
    },
    pause: Control {
        lock: Some(pg!("pause_lock.sql")),
        write: pg!("pause.sql"),
    },
    resume: Control {
        lock: Some(pg!("resume_lock.sql")),
        write: pg!("resume.sql"),
    },
    release_claims_of: pg!("release_claims_of.sql"),
    retry_executions: Control {
        lock: None,
        write: pg!("retry_executions.sql"),
    },
    delete_log: both!("delete_log.sql"),
    delete_execution: both!("delete_execution.sql"),
    finished_runs: both!("finished_runs.sql"),
    delete_runs: pg!("delete_runs.sql"),
    oldest_finished_run: both!("oldest_finished_run.sql"),
    retention_lock: Some(pg!("retention_lock.sql")),
    flow_deadlines: both!("flow_deadlines.sql"),
    next_deadline: both!("next_deadline.sql"),
    move_deadline: both!("move_deadline.sql"),

    limited_keys: pg!("limited_keys.sql"),
    lock_runs: Some(pg!("lock_runs.sql")),
    lock_keys: Some(pg!("lock_keys.sql")),
    admit_runs: Admit::AllAtOnce(pg!("admit_runs.sql")),
    admit_keys: Admit::AllAtOnce(pg!("admit_keys.sql")),
    set_limit: both!("set_limit.sql"),
    key_limited: pg!("key_limited.sql"),
    remove_limit: both!("remove_limit.sql"),
    key_unlimited: both!("key_unlimited.sql"),
    concurrency_limits: both!("concurrency_limits.sql"),
    waiting_runs: both!("waiting_runs.sql"),

    claim: &[pg!("claim.sql")],
    pull: [&[pg!("pull.sql")], &[pg!("pull_of_flow.sql")]],
    pull_after: Some([&[pg!("pull_after.sql")], &[pg!("pull_of_flow_after.sql")]]),
    return_lapsed: pg!("return_lapsed.sql"),
    promote_due: pg!("promote_due.sql"),
    next_due: both!("next_due.sql"),
    node_deadlines: both!("node_deadlines.sql"),
    clear_node_deadlines: pg!("clear_node_deadlines.sql"),
    release: &[pg!("release.sql")],
    finish_many: &[pg!("finish_many.sql")],
    extend_many: &[pg!("extend_many.sql")],
    existing: pg!("existing.sql"),
    expire_old_claims: both!("expire_old_claims.sql"),
    execution_status: both!("execution_status.sql"),
    needing_recovery: both!("needing_recovery.sql"),
    record_recovery: both!("record_recovery.sql"),
    acquire_recovery_lock: both!("acquire_recovery_lock.sql"),
    release_recovery_lock: both!("release_recovery_lock.sql"),

    execution: both!("execution.sql"),
    executions_by_ids: pg!("executions_by_ids.sql"),
    children: Scoped {
        all: pg!("children.sql"),
        owner: pg!("owner_children.sql"),
    },
    child_counts: Scoped {
        all: pg!("child_counts.sql"),
        owner: pg!("owner_child_counts.sql"),
    },
    tree: pg!("tree.sql"),
    tree_shapes: pg!("tree_shapes.sql"),
    roots_by_status: both!("roots_by_status.sql"),
    owner_roots: both!("owner_roots.sql"),
    child_feed: both!("child_feed.sql"),
    direct_child_feed: both!("direct_child_feed.sql"),
    direct_child_feed_by_status: both!("direct_child_feed_by_status.sql"),
    flows: both!("flows.sql"),
    owner_flows: both!("owner_flows.sql"),
    ancestors: both!("ancestors.sql"),
    execution_stats: both!("execution_stats.sql"),
    active_claims: both!("active_claims.sql"),
    claims_by_execution: pg!("claims_by_execution.sql"),
    recovery_by_execution: pg!("recovery_by_execution.sql"),
    queue_depth: both!("queue_depth.sql"),

    log_head: pg!("log_head.sql"),
    log_tail: pg!("log_tail.sql"),
    root_events: pg!("root_events.sql"),
    root_positions: pg!("root_positions.sql"),
    log_pruned: both!("log_pruned.sql"),
    log_oldest: pg!("log_oldest.sql"),
    log_prune: pg!("log_prune.sql"),
    log_record_pruned: both!("log_record_pruned.sql"),
    log_stats: pg!("log_stats.sql"),
    janitor_lock: Some(pg!("janitor_lock.sql")),
    notify: Some(pg!("notify.sql")),
};

pub static SQLITE: Statements = Statements {
    insert_new: None,
    upsert_many: lite!("upsert_many.sql"),
    update_status: both!("update_status.sql"),
    update_failure_info: both!("update_failure_info.sql"),
    cancel: Control {
        lock: None,
        write: lite!("cancel.sql"),
    },
    pause: Control {
        lock: None,
        write: lite!("pause.sql"),
    },
    resume: Control {
        lock: None,
        write: lite!("resume.sql"),
    },
    release_claims_of: lite!("release_claims_of.sql"),
    retry_executions: Control {
        lock: None,
        write: lite!("retry_executions.sql"),
    },
    delete_log: both!("delete_log.sql"),
    delete_execution: both!("delete_execution.sql"),
    finished_runs: both!("finished_runs.sql"),
    delete_runs: lite!("delete_runs.sql"),
    oldest_finished_run: both!("oldest_finished_run.sql"),
    retention_lock: None,
    flow_deadlines: both!("flow_deadlines.sql"),
    next_deadline: both!("next_deadline.sql"),
    move_deadline: both!("move_deadline.sql"),

    limited_keys: lite!("limited_keys.sql"),
    lock_runs: None,
    lock_keys: None,
    admit_runs: Admit::EachOne(lite!("admit_run.sql")),
    admit_keys: Admit::EachOne(lite!("admit_key.sql")),
    set_limit: both!("set_limit.sql"),
    key_limited: lite!("key_limited.sql"),
    remove_limit: both!("remove_limit.sql"),
    key_unlimited: both!("key_unlimited.sql"),
    concurrency_limits: both!("concurrency_limits.sql"),
    waiting_runs: both!("waiting_runs.sql"),

    claim: &[
        lite!("claim_pick.sql"),
        lite!("claim_picked.sql"),
        lite!("mark_claimed.sql"),
    ],
    pull: [
        &[
            lite!("pull_pick.sql"),
            lite!("claim_picked.sql"),
            lite!("mark_claimed.sql"),
        ],
        &[
            lite!("pull_pick_of_flow.sql"),
            lite!("claim_picked.sql"),
            lite!("mark_claimed.sql"),
        ],
    ],
    pull_after: None,
    return_lapsed: lite!("return_lapsed.sql"),
    promote_due: lite!("promote_due.sql"),
    next_due: both!("next_due.sql"),
    node_deadlines: both!("node_deadlines.sql"),
    clear_node_deadlines: lite!("clear_node_deadlines.sql"),
    release: &[lite!("release_claim.sql"), lite!("release_execution.sql")],
    finish_many: &[lite!("finish_release_held.sql"), lite!("finish_held.sql")],
    extend_many: &[lite!("extend_claims.sql"), lite!("extend_leases.sql")],
    existing: lite!("existing.sql"),
    expire_old_claims: both!("expire_old_claims.sql"),
    execution_status: both!("execution_status.sql"),
    needing_recovery: both!("needing_recovery.sql"),
    record_recovery: both!("record_recovery.sql"),
    acquire_recovery_lock: both!("acquire_recovery_lock.sql"),
    release_recovery_lock: both!("release_recovery_lock.sql"),

    execution: both!("execution.sql"),
    executions_by_ids: lite!("executions_by_ids.sql"),
    children: Scoped {
        all: lite!("children.sql"),
        owner: lite!("owner_children.sql"),
    },
    child_counts: Scoped {
        all: lite!("child_counts.sql"),
        owner: lite!("owner_child_counts.sql"),
    },
    tree: lite!("tree.sql"),
    tree_shapes: lite!("tree_shapes.sql"),
    roots_by_status: both!("roots_by_status.sql"),
    owner_roots: both!("owner_roots.sql"),
    child_feed: both!("child_feed.sql"),
    direct_child_feed: both!("direct_child_feed.sql"),
    direct_child_feed_by_status: both!("direct_child_feed_by_status.sql"),
    flows: both!("flows.sql"),
    owner_flows: both!("owner_flows.sql"),
    ancestors: both!("ancestors.sql"),
    execution_stats: both!("execution_stats.sql"),
    active_claims: both!("active_claims.sql"),
    claims_by_execution: lite!("claims_by_execution.sql"),
    recovery_by_execution: lite!("recovery_by_execution.sql"),
    queue_depth: both!("queue_depth.sql"),

    log_head: lite!("log_head.sql"),
    log_tail: lite!("log_tail.sql"),
    root_events: lite!("root_events.sql"),
    root_positions: lite!("root_positions.sql"),
    log_pruned: both!("log_pruned.sql"),
    log_oldest: lite!("log_oldest.sql"),
    log_prune: lite!("log_prune.sql"),
    log_record_pruned: both!("log_record_pruned.sql"),
    log_stats: lite!("log_stats.sql"),
    janitor_lock: None,
    notify: None,
};

/// PostgreSQL only, outside the table: the standbys' watcher.
pub mod standby {
    pub const WAL_WRITTEN: &str = pg!("wal_written.sql");
    pub const WAL_INSERTED: &str = pg!("wal_inserted.sql");
    pub const WAL_REPLAYED: &str = pg!("wal_replayed.sql");
}

/// SQLite only, outside the table: the commit group's first statement.
pub const SQLITE_TAKE_WRITE_LOCK: &str = lite!("take_write_lock.sql");

#[cfg(test)]
impl Statements {
    /// Every statement of the table, for the tests that read them all.
    pub fn all(&self) -> Vec<&'static str> {
        let mut all = vec![
            self.upsert_many,
            self.update_status,
            self.update_failure_info,
            self.release_claims_of,
            self.delete_log,
            self.delete_execution,
            self.finished_runs,
            self.delete_runs,
            self.oldest_finished_run,
            self.flow_deadlines,
            self.next_deadline,
            self.move_deadline,
            self.limited_keys,
            self.admit_runs.text(),
            self.admit_keys.text(),
            self.set_limit,
            self.key_limited,
            self.remove_limit,
            self.key_unlimited,
            self.concurrency_limits,
            self.waiting_runs,
            self.return_lapsed,
            self.promote_due,
            self.next_due,
            self.node_deadlines,
            self.clear_node_deadlines,
            self.existing,
            self.expire_old_claims,
            self.execution_status,
            self.needing_recovery,
            self.record_recovery,
            self.acquire_recovery_lock,
            self.release_recovery_lock,
            self.execution,
            self.executions_by_ids,
            self.children.all,
            self.children.owner,
            self.child_counts.all,
            self.child_counts.owner,
            self.tree,
            self.tree_shapes,
            self.roots_by_status,
            self.owner_roots,
            self.child_feed,
            self.direct_child_feed,
            self.direct_child_feed_by_status,
            self.flows,
            self.owner_flows,
            self.ancestors,
            self.execution_stats,
            self.active_claims,
            self.claims_by_execution,
            self.recovery_by_execution,
            self.queue_depth,
            self.log_head,
            self.log_tail,
            self.root_events,
            self.root_positions,
            self.log_pruned,
            self.log_oldest,
            self.log_prune,
            self.log_record_pruned,
            self.log_stats,
        ];
        for control in [
            &self.cancel,
            &self.pause,
            &self.resume,
            &self.retry_executions,
        ] {
            all.extend(control.lock);
            all.push(control.write);
        }
        all.extend(
            [
                self.insert_new,
                self.lock_runs,
                self.lock_keys,
                self.retention_lock,
                self.janitor_lock,
                self.notify,
            ]
            .into_iter()
            .flatten(),
        );
        let steps = [self.claim, self.release, self.finish_many, self.extend_many]
            .into_iter()
            .chain(self.pull)
            .chain(self.pull_after.into_iter().flatten());
        for steps in steps {
            all.extend_from_slice(steps);
        }
        all
    }
}

#[cfg(test)]
/// A statement's text without its comments (`--` to the end of a line).
pub fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
