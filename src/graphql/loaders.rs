//! What a request's fields read through: the store with the viewer's scope
//! and the request's row budget, and the DataLoaders that really batch.
//! Built per request, so batching never crosses owners and the owner filter
//! stays in the SQL.

use async_graphql::dataloader::{DataLoader, Loader};
use std::collections::HashMap;

use super::budget::RowBudget;
use super::error::OrGql;
use super::levels::{Row, Window};
use crate::store::{ChildWindow, Execution, ExecutionStore, Scope};

/// Loader errors must be `Clone`: they are the already-mapped GraphQL error
/// (logged once, with its code), shared by every field of the failed batch.
pub type LoadError = async_graphql::Error;

/// Executions by id, for fields resolved one at a time (a claim's
/// execution): the loader's 1 ms window gathers the keys of one response
/// level into one statement.
pub struct ExecutionLoader {
    store: ExecutionStore,
    scope: Scope,
}

impl Loader<String> for ExecutionLoader {
    type Value = Execution;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Execution>, LoadError> {
        Ok(self
            .store
            .reads()
            .get_many(keys, &self.scope)
            .await
            .gql()?
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect())
    }
}

/// A parent and the window of its children a `children` field asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChildKey {
    pub parent: String,
    pub window: Window,
}

/// `children` over `batch_get_direct_children`: one statement per distinct
/// window among the keys it is handed, each within what is left of the
/// request's row budget. Its one caller, `Level::children`, hands it a
/// level's parents in one window and holds the budget's gate across the
/// load (so it charges with `RowBudget::within`): two levels' loads never
/// merge into one batch, and the budget counts each level's rows (two trees
/// under two aliases count twice, though their rows are the same).
pub struct ChildrenLoader {
    store: ExecutionStore,
    scope: Scope,
    budget: Option<RowBudget>,
}

impl Loader<ChildKey> for ChildrenLoader {
    /// Shared rows: the loader hands each caller a copy of its list.
    type Value = Vec<Row>;
    type Error = LoadError;

    async fn load(&self, keys: &[ChildKey]) -> Result<HashMap<ChildKey, Vec<Row>>, LoadError> {
        let mut windows: HashMap<&Window, Vec<String>> = HashMap::new();
        for key in keys {
            windows
                .entry(&key.window)
                .or_default()
                .push(key.parent.clone());
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (window, parents) in windows {
            let load = async |max_rows| {
                let store_window = ChildWindow {
                    per_parent: Some(window.first),
                    after: window.after.clone(),
                    max_rows,
                    columns: window.columns,
                };
                let map = self
                    .store
                    .reads()
                    .batch_get_direct_children(&parents, &store_window, &self.scope)
                    .await?;
                Ok(vec![map])
            };
            let mut maps = RowBudget::within(self.budget.as_ref(), load, |m| {
                m.values().map(Vec::len).sum()
            })
            .await
            .gql()?;
            for (parent, children) in maps.pop().unwrap_or_default() {
                let key = ChildKey {
                    parent,
                    window: window.clone(),
                };
                out.insert(key, children);
            }
        }
        Ok(out)
    }
}

pub struct Loaders {
    pub store: ExecutionStore,
    pub scope: Scope,
    /// The request's row budget; None for a subscription's connection.
    pub budget: Option<RowBudget>,
    pub children: DataLoader<ChildrenLoader>,
    pub claim_executions: DataLoader<ExecutionLoader>,
}

impl Loaders {
    /// `budget`: the request's row budget; None for a subscription's
    /// connection, which lives too long for one.
    pub fn new(store: &ExecutionStore, scope: &Scope, budget: Option<RowBudget>) -> Self {
        Self {
            store: store.clone(),
            scope: scope.clone(),
            budget: budget.clone(),
            // A level hands over all its keys at once: nothing to wait for,
            // and no batch to split.
            children: DataLoader::new(
                ChildrenLoader {
                    store: store.clone(),
                    scope: scope.clone(),
                    budget,
                },
                tokio::spawn,
            )
            .delay(std::time::Duration::ZERO)
            .max_batch_size(usize::MAX),
            claim_executions: DataLoader::new(
                ExecutionLoader {
                    store: store.clone(),
                    scope: scope.clone(),
                },
                tokio::spawn,
            ),
        }
    }
}
