//! Claims and recovery histories, as the reads of a level load them.

use std::collections::HashMap;

use super::Reads;
use crate::store::db::{now, run, validate, Scope, StoreResult};
use entity::execution_claim::Model as Claim;
use entity::execution_recovery::Model as Recovery;

impl Reads {
    /// `getActiveClaims`: live claims (active and not past expiry).
    pub async fn get_active_claims(&self, scope: &Scope) -> StoreResult<Vec<Claim>> {
        let claims = self
            .db
            .stmt(self.db.sql().active_claims, [now().into(), scope.param()]);
        self.db.read_models(claims).await
    }

    /// `getClaimForExecution`: the claim row in whatever status.
    pub async fn get_claim_for_execution(
        &self,
        execution_id: &str,
        scope: &Scope,
    ) -> StoreResult<Option<Claim>> {
        validate::id("executionId", execution_id)?;
        Ok(self
            .claims_for(&[execution_id.to_owned()], scope)
            .await?
            .remove(execution_id))
    }

    /// Claim rows of many executions in one statement (a level's claims).
    pub async fn claims_for(
        &self,
        execution_ids: &[String],
        scope: &Scope,
    ) -> StoreResult<HashMap<String, Claim>> {
        if execution_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let claims = self.db.stmt(
            self.db.sql().claims_by_execution,
            [run::json_list(execution_ids).into(), scope.param()],
        );
        Ok(self
            .db
            .read_models::<Claim>(claims)
            .await?
            .into_iter()
            .map(|c| (c.execution_id.clone(), c))
            .collect())
    }

    /// `getRecoveryHistory`, newest first.
    pub async fn get_recovery_history(
        &self,
        execution_id: &str,
        scope: &Scope,
    ) -> StoreResult<Vec<Recovery>> {
        validate::id("executionId", execution_id)?;
        Ok(self
            .recovery_history_for(&[execution_id.to_owned()], scope)
            .await?
            .remove(execution_id)
            .unwrap_or_default())
    }

    /// Recovery histories of many executions in one statement, newest first.
    pub async fn recovery_history_for(
        &self,
        execution_ids: &[String],
        scope: &Scope,
    ) -> StoreResult<HashMap<String, Vec<Recovery>>> {
        let mut histories: HashMap<String, Vec<Recovery>> = execution_ids
            .iter()
            .map(|id| (id.clone(), Vec::new()))
            .collect();
        if execution_ids.is_empty() {
            return Ok(histories);
        }
        let recoveries = self.db.stmt(
            self.db.sql().recovery_by_execution,
            [run::json_list(execution_ids).into(), scope.param()],
        );
        for row in self.db.read_models::<Recovery>(recoveries).await? {
            if let Some(list) = histories.get_mut(&row.execution_id) {
                list.push(row);
            }
        }
        Ok(histories)
    }
}
