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
//! - **parsed documents kept**: workers send the same few documents over and
//!   over with different variables; parsing one costs more than copying the
//!   parsed form, so the last [`DOCUMENTS_KEPT`] documents (each at most
//!   [`LARGEST_KEPT`] bytes of text) are kept by their text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Request, Response, ServerResult, Variables};

use super::error::code;

pub const DOCUMENTS_KEPT: usize = 256;
pub const LARGEST_KEPT: usize = 16 * 1024;

/// The schema's extension factory; it owns the documents kept.
#[derive(Default)]
pub struct RequestHooks {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

impl ExtensionFactory for RequestHooks {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OneRequest {
            documents: self.documents.clone(),
            operation_name: Mutex::default(),
            kind: Mutex::default(),
        })
    }
}

struct OneRequest {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
    operation_name: Mutex<Option<String>>,
    kind: Mutex<Option<&'static str>>,
}

impl OneRequest {
    fn kept(&self, query: &str) -> Option<ExecutableDocument> {
        self.documents.lock().ok()?.get(query).cloned()
    }

    fn keep(&self, query: &str, document: &ExecutableDocument) {
        if query.len() > LARGEST_KEPT {
            return;
        }
        if let Ok(mut documents) = self.documents.lock() {
            // Full: start again (cheaper than tracking use; the documents a
            // fleet repeats come straight back).
            if documents.len() >= DOCUMENTS_KEPT {
                documents.clear();
            }
            documents.insert(query.to_owned(), document.clone());
        }
    }
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
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let kept = self.kept(query);
        crate::metrics::document(kept.is_some());
        let document = match kept {
            Some(document) => document,
            None => {
                let document = next.run(ctx, query, variables).await?;
                self.keep(query, &document);
                document
            }
        };
        let kind = match &document.operations {
            DocumentOperations::Single(op) => Some(kind_of(op.node.ty)),
            DocumentOperations::Multiple(ops) => {
                let name = self.operation_name.lock().ok().and_then(|n| n.clone());
                let chosen = match name {
                    Some(name) => ops
                        .iter()
                        .find(|(n, _)| n.as_str() == name)
                        .map(|(_, op)| op),
                    None if ops.len() == 1 => ops.values().next(),
                    None => None,
                };
                chosen.map(|op| kind_of(op.node.ty))
            }
        };
        if let Ok(mut slot) = self.kind.lock() {
            *slot = kind;
        }
        Ok(document)
    }
}
