//! `deleteExecution`: an execution and its whole subtree.

use sea_orm::ConnectionTrait;

use super::Runs;
use crate::store::db::{validate, Effects, Scope, StoreResult};

impl Runs {
    /// `delete`: removes the execution and its whole subtree, with their
    /// claims and recovery history (the schema cascades). True when it
    /// existed. The subtree's DELETED events are logged in the same
    /// transaction, parents first (the cascade logs nothing).
    pub async fn delete(&self, id: &str, scope: &Scope) -> StoreResult<bool> {
        validate::id("id", id)?;
        let sql = self.db.sql();
        let log = self
            .db
            .stmt(sql.delete_log, [id.to_owned().into(), scope.param()]);
        let delete = self.db.stmt(sql.delete_execution, [id.to_owned().into()]);
        self.db
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
            .await
    }
}
