//! Who may call a field, declared on the field itself
//! (`#[graphql(guard = "WorkersOnly")]`), so that no resolver can forget
//! the check: async-graphql runs the guard before the resolver.

use async_graphql::{Context, Guard};

use super::error::forbidden;
use super::viewer;
use crate::auth::Role;

/// Claims, leases, recovery and failure bookkeeping: the `worker` and
/// `admin` roles; a `user` token gets FORBIDDEN.
pub struct WorkersOnly;

impl Guard for WorkersOnly {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match viewer(ctx)?.role {
            Role::User => Err(forbidden("this operation needs the worker or admin role")),
            Role::Worker | Role::Admin => Ok(()),
        }
    }
}

/// Settings that act on every owner's work (a key's concurrency limit): the
/// `admin` role only.
pub struct AdminOnly;

impl Guard for AdminOnly {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match viewer(ctx)?.role {
            Role::Admin => Ok(()),
            Role::User | Role::Worker => Err(forbidden("this operation needs the admin role")),
        }
    }
}
