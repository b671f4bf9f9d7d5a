use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum ClaimStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "released")]
    Released,
    #[sea_orm(string_value = "expired")]
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "execution_claims")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub execution_id: String,
    pub worker_id: String,
    pub claimed_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub heartbeat_at: DateTimeUtc,
    pub status: ClaimStatus,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::execution::Entity",
        from = "Column::ExecutionId",
        to = "super::execution::Column::Id",
        on_delete = "Cascade"
    )]
    Execution,
}

impl Related<super::execution::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Execution.def()
    }
}

impl Model {
    /// Active and not past its expiry at `at`: the claim still counts.
    pub fn is_live(&self, at: DateTimeUtc) -> bool {
        self.status == ClaimStatus::Active && self.expires_at >= at
    }
}

impl ActiveModelBehavior for ActiveModel {}
