//! `deleteExecution`: an execution and its whole subtree.

use sea_orm::ConnectionTrait;

use super::Runs;
use crate::store::db::{run, validate, Effects, Scope, StoreResult};

impl Runs {
    /// `delete`: removes the execution and its whole subtree, with their
    /// claims and recovery history (the schema cascades). True when it
    /// existed. The subtree's DELETED events are logged in the same
    /// transaction, parents first (the cascade logs nothing).
    pub async fn delete(&self, id: &str, scope: &Scope) -> StoreResult<bool> {
        validate::id("id", id)?;
        let sql = self.db.sql();
        let found = self
            .db
            .stmt(sql.execution, [id.to_owned().into(), scope.param()]);
        let root = match run::execution(self.db.primary(), found).await? {
            Some(e) => e.root_execution_id,
            None => id.to_owned(),
        };
        let log = self
            .db
            .stmt(sql.delete_log, [id.to_owned().into(), scope.param()]);
        let delete = self.db.stmt(sql.delete_execution, [id.to_owned().into()]);
        let deleted = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let deleted = w
                        .transaction(|txn| {
                            Box::pin(async move {
                                if txn.execute(log).await?.rows_affected() == 0 {
                                    return Ok(false);
                                }
                                txn.execute(delete).await?;
                                Ok(true)
                            })
                        })
                        .await?;
                    let effects = match deleted {
                        true => Effects::logged(),
                        false => Effects::none(),
                    };
                    Ok((deleted, effects))
                })
            })
            .await?;
        if deleted {
            // Its run's slots and its keys' that the subtree held are free
            // (a deleted root's run is gone: its id finds no limit).
            self.admit_in_run(&root).await;
        }
        Ok(deleted)
    }
}
