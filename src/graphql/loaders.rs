//! DataLoaders, one per relation of `Execution`. They are built per request
//! with the viewer's scope, so batching never crosses owners and the owner
//! filter stays in the SQL.

use async_graphql::dataloader::{DataLoader, Loader};
use std::collections::HashMap;

use super::budget::RowBudget;
use super::error::OrGql;
use crate::store::{ChildWindow, Claim, Cursor, Execution, ExecutionStore, Recovery, Scope};

/// Loader errors must be `Clone`: they are the already-mapped GraphQL error
/// (logged once, with its code), shared by every field of the failed batch.
pub type LoadError = async_graphql::Error;

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
            .get_many(keys, &self.scope)
            .await
            .gql()?
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect())
    }
}

/// A parent and the window of its children a `children(first:, after:)`
/// field asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChildKey {
    pub parent: String,
    pub first: i64,
    pub after: Option<Cursor>,
}

/// `children`: one `batch_get_direct_children` per level of the response
/// (and per distinct window, when aliases ask for different ones).
pub struct ChildrenLoader {
    store: ExecutionStore,
    scope: Scope,
    budget: Option<RowBudget>,
}

impl Loader<ChildKey> for ChildrenLoader {
    type Value = Vec<Execution>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ChildKey],
    ) -> Result<HashMap<ChildKey, Vec<Execution>>, LoadError> {
        let mut windows: HashMap<(i64, Option<Cursor>), Vec<String>> = HashMap::new();
        for key in keys {
            windows
                .entry((key.first, key.after.clone()))
                .or_default()
                .push(key.parent.clone());
        }
        let mut out = HashMap::with_capacity(keys.len());
        for ((first, after), parents) in windows {
            let load = async |max_rows| {
                let window = ChildWindow {
                    per_parent: Some(first),
                    after: after.clone(),
                    max_rows,
                };
                let map = self
                    .store
                    .batch_get_direct_children_in(&parents, &window, &self.scope)
                    .await?;
                Ok(vec![map])
            };
            let mut maps = RowBudget::bounded(self.budget.as_ref(), load, |m| {
                m.values().map(Vec::len).sum()
            })
            .await
            .gql()?;
            for (parent, children) in maps.pop().unwrap_or_default() {
                let key = ChildKey {
                    parent,
                    first,
                    after: after.clone(),
                };
                out.insert(key, children);
            }
        }
        Ok(out)
    }
}

pub struct ChildCountLoader {
    store: ExecutionStore,
    scope: Scope,
}

impl Loader<String> for ChildCountLoader {
    type Value = i64;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, i64>, LoadError> {
        self.store
            .count_direct_children(keys, &self.scope)
            .await
            .gql()
    }
}

pub struct ClaimLoader {
    store: ExecutionStore,
    scope: Scope,
}

impl Loader<String> for ClaimLoader {
    type Value = Claim;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Claim>, LoadError> {
        self.store.claims_for(keys, &self.scope).await.gql()
    }
}

pub struct RecoveryLoader {
    store: ExecutionStore,
    scope: Scope,
}

impl Loader<String> for RecoveryLoader {
    type Value = Vec<Recovery>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Vec<Recovery>>, LoadError> {
        self.store
            .recovery_history_for(keys, &self.scope)
            .await
            .gql()
    }
}

pub struct Loaders {
    /// For whole levels (`load_many`): no delay, the batch is already complete.
    pub executions: DataLoader<ExecutionLoader>,
    /// For one-at-a-time lookups (a claim's execution): the default 1 ms
    /// delay gathers the keys of one response level.
    pub claim_executions: DataLoader<ExecutionLoader>,
    pub children: DataLoader<ChildrenLoader>,
    pub child_counts: DataLoader<ChildCountLoader>,
    pub claims: DataLoader<ClaimLoader>,
    pub recovery: DataLoader<RecoveryLoader>,
}

impl Loaders {
    /// `budget`: the request's row budget; None for a subscription's
    /// connection, which lives too long for one.
    pub fn new(store: &ExecutionStore, scope: &Scope, budget: Option<RowBudget>) -> Self {
        // Levels hand over all their keys at once: nothing to wait for.
        fn loader<K: Send + Sync + std::hash::Hash + Eq + Clone + 'static, T: Loader<K>>(
            l: T,
        ) -> DataLoader<T> {
            DataLoader::new(l, tokio::spawn)
                .delay(std::time::Duration::ZERO)
                .max_batch_size(usize::MAX)
        }
        let (s, sc) = (store.clone(), scope.clone());
        Self {
            executions: loader(ExecutionLoader {
                store: s.clone(),
                scope: sc.clone(),
            }),
            claim_executions: DataLoader::new(
                ExecutionLoader {
                    store: s.clone(),
                    scope: sc.clone(),
                },
                tokio::spawn,
            ),
            children: loader(ChildrenLoader {
                store: s.clone(),
                scope: sc.clone(),
                budget,
            }),
            child_counts: loader(ChildCountLoader {
                store: s.clone(),
                scope: sc.clone(),
            }),
            claims: loader(ClaimLoader {
                store: s.clone(),
                scope: sc.clone(),
            }),
            recovery: loader(RecoveryLoader {
                store: s,
                scope: sc,
            }),
        }
    }
}
