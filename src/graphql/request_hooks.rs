//! What every GraphQL operation goes through, in one async-graphql
//! extension (each extension costs a hook on every resolved field, so there
//! is one):
//!
//! - **metrics**: kind (query, mutation, subscription), outcome, latency, and
//!   every error's `extensions.code`;
//! - **error codes**: errors raised by async-graphql itself (parse,
//!   validation, variable coercion, depth and complexity limits) carry no
//!   code; they are all about the request, so they get BAD_USER_INPUT here,
//!   before they are counted;
//! - **the operation's kind**, read off the document (which the HTTP layer
//!   parsed already: see `documents`);
//! - **persisted operations and the allow list** (see `persisted`), before
//!   anything else, on HTTP and on WebSockets alike;
//! - **strings holding U+0000** refused once parsed (see `input_text`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Request, Response, ServerResult, Variables};

use super::documents::operation_type;
use super::error::code;
use super::input_text::refuse_nul;
use super::persisted::PersistedOperations;
use crate::auth::{Role, Viewer};

/// The schema's extension factory.
#[derive(Default)]
pub struct RequestHooks;

impl ExtensionFactory for RequestHooks {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OneRequest {
            operation_name: Mutex::default(),
            kind: Mutex::default(),
        })
    }
}

struct OneRequest {
    operation_name: Mutex<Option<String>>,
    kind: Mutex<Option<&'static str>>,
}

fn kind_of(ty: OperationType) -> &'static str {
    match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

#[async_trait::async_trait]
impl Extension for OneRequest {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let mut response = next.run(ctx).await;
        for error in &mut response.errors {
            let ext = error.extensions.get_or_insert_with(Default::default);
            let code = match ext.get("code") {
                Some(async_graphql::Value::String(code)) => code.clone(),
                _ => {
                    ext.set("code", code::BAD_USER_INPUT);
                    code::BAD_USER_INPUT.to_owned()
                }
            };
            crate::metrics::error(code);
        }
        let kind = self.kind.lock().ok().and_then(|k| *k).unwrap_or("unknown");
        crate::metrics::operation(kind, response.errors.is_empty(), started.elapsed());
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut name) = self.operation_name.lock() {
            name.clone_from(&request.operation_name);
        }
        let mut request = request;
        if let Some(persisted) = ctx.data_opt::<Arc<PersistedOperations>>() {
            // The viewer is request data over HTTP, connection data over a
            // WebSocket.
            let admin = request
                .data
                .get(&std::any::TypeId::of::<Viewer>())
                .and_then(|v| v.downcast_ref::<Viewer>())
                .or_else(|| ctx.data_opt::<Viewer>())
                .is_some_and(|v| v.role == Role::Admin);
            persisted.resolve(&mut request, admin)?;
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // Parsed already when the HTTP layer set it on the request.
        let document = next.run(ctx, query, variables).await?;
        refuse_nul(&document, variables)?;
        let name = self.operation_name.lock().ok().and_then(|n| n.clone());
        let kind = operation_type(&document, name.as_deref()).map(kind_of);
        if let Ok(mut slot) = self.kind.lock() {
            *slot = kind;
        }
        Ok(document)
    }
}
