use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    #[sea_orm(string_value = "created")]
    Created,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "paused")]
    Paused,
    #[sea_orm(string_value = "completed")]
    Completed,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "stopped")]
    Stopped,
}

impl ExecutionStatus {
    /// Completed, failed and stopped executions are final: nothing claims them.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Stopped)
    }

    /// Every status, in the order of their lifecycle.
    pub const ALL: [ExecutionStatus; 6] = [
        Self::Created,
        Self::Running,
        Self::Paused,
        Self::Completed,
        Self::Failed,
        Self::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub flow_id: String,
    pub owner_id: String,
    pub root_execution_id: String,
    pub parent_execution_id: Option<String>,
    pub status: ExecutionStatus,
    pub execution_depth: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub error_message: Option<String>,
    pub error_node_id: Option<String>,
    pub options: Option<Json>,
    pub integration: Option<Json>,
    pub external_events: Option<Json>,
    pub failure_count: i32,
    pub last_failure_reason: Option<String>,
    pub last_failure_at: Option<DateTimeUtc>,
    pub processing_started_at: Option<DateTimeUtc>,
    pub processing_worker_id: Option<String>,
    /// Not claimable before this: the live claim's expiry (mirrored from
    /// the active claim), or `run_at` while a CREATED execution is not due
    /// yet; null when it is in the fresh queue. The queue's index holds the
    /// rows without one.
    pub lease_expires_at: Option<DateTimeUtc>,
    /// When it may first be handed out; null: at its creation (see
    /// `Model::due_at`).
    pub run_at: Option<DateTimeUtc>,
    /// Higher first, −100 to 100.
    pub priority: i32,
    /// Under a paused execution (from `pauseExecution` to `resumeExecution`).
    pub paused: bool,
    /// The key whose concurrency limit (if one is set) it counts against.
    pub concurrency_key: Option<String>,
    /// Its run's `maxConcurrency` (the root's, copied down the run).
    pub max_concurrency: Option<i32>,
    /// What it waits for before it may be handed out: 0 nothing, 1 a slot
    /// of its run, 2 a slot of its key (see `WAITING_FOR_RUN`).
    pub waiting: i32,
    /// Its run's `nodeTimeoutMs` (the root's, copied down the run): a claim
    /// of it is capped at its start plus this.
    pub node_timeout_ms: Option<i64>,
}

/// `waiting`: for a slot of its run (`max_concurrency`).
pub const WAITING_FOR_RUN: i32 = 1;
/// `waiting`: for a slot of its `concurrency_key`.
pub const WAITING_FOR_KEY: i32 = 2;

impl Model {
    /// When it may be handed out: `run_at`, or its creation.
    pub fn due_at(&self) -> DateTimeUtc {
        self.run_at.unwrap_or(self.created_at)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "Entity",
        from = "Column::ParentExecutionId",
        to = "Column::Id",
        on_delete = "Cascade"
    )]
    Parent,
    #[sea_orm(has_one = "super::execution_claim::Entity")]
    Claim,
    #[sea_orm(has_many = "super::execution_recovery::Entity")]
    Recovery,
}

impl Related<super::execution_claim::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Claim.def()
    }
}

impl Related<super::execution_recovery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Recovery.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
