//! Parsed documents, once per request: the HTTP layer parses a request's
//! document before anything else (it needs the operation's type to choose
//! where the request reads) and hands the parsed form to execution, which
//! does not parse it again.
//!
//! Workers send the same few documents over and over with different
//! variables; parsing one costs more than copying the parsed form, so the
//! last [`DOCUMENTS_KEPT`] documents (each at most [`LARGEST_KEPT`] bytes of
//! text) are kept by their text.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{BatchRequest, Request};

use super::persisted::PersistedOperations;

pub const DOCUMENTS_KEPT: usize = 256;
pub const LARGEST_KEPT: usize = 16 * 1024;

#[derive(Default)]
pub struct Documents {
    kept: Mutex<HashMap<String, ExecutableDocument>>,
}

/// What the requests of a batch are, once parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// Every operation is a query: the batch may read from a standby.
    pub read_only: bool,
    /// Some operation is a mutation or a subscription (which GET refuses).
    pub writes: bool,
    /// Some request names a persisted query whose document is not known
    /// (so what its operation is cannot be told).
    pub unknown_hash: bool,
}

impl Documents {
    /// Parses every request of `batch` (or takes a kept document), sets it
    /// on the request for execution, and tells what its operations are. A
    /// document that does not parse is left to execution, which reports the
    /// error, and counts as neither a query nor a write. A request naming a
    /// persisted query without its text gets the text `persisted` knows
    /// (the protocol itself, and its errors, are the schema's hook: see
    /// `persisted`).
    pub fn prepare(&self, batch: &mut BatchRequest, persisted: &PersistedOperations) -> Prepared {
        let mut prepared = Prepared {
            read_only: true,
            writes: false,
            unknown_hash: false,
        };
        // Every request is prepared, whatever the ones before it are.
        for request in batch.iter_mut() {
            let ty = self.prepare_one(request, persisted);
            prepared.read_only &= ty == Some(OperationType::Query);
            prepared.writes |= matches!(
                ty,
                Some(OperationType::Mutation | OperationType::Subscription)
            );
            prepared.unknown_hash |=
                request.query.is_empty() && request.extensions.contains_key("persistedQuery");
        }
        prepared
    }

    fn prepare_one(
        &self,
        request: &mut Request,
        persisted: &PersistedOperations,
    ) -> Option<OperationType> {
        persisted.fill_known(request);
        let document = match self.kept(&request.query) {
            Some(document) => document,
            None => match async_graphql::parser::parse_query(&request.query) {
                Ok(document) => {
                    self.keep(&request.query, &document);
                    document
                }
                Err(_) => return None,
            },
        };
        let ty = operation_type(&document, request.operation_name.as_deref());
        request.set_parsed_query(document);
        ty
    }

    fn kept(&self, query: &str) -> Option<ExecutableDocument> {
        let kept = self.kept.lock().ok()?.get(query).cloned();
        crate::metrics::document(kept.is_some());
        kept
    }

    fn keep(&self, query: &str, document: &ExecutableDocument) {
        if query.len() > LARGEST_KEPT {
            return;
        }
        if let Ok(mut documents) = self.kept.lock() {
            // Full: start again (cheaper than tracking use; the documents a
            // fleet repeats come straight back).
            if documents.len() >= DOCUMENTS_KEPT {
                documents.clear();
            }
            documents.insert(query.to_owned(), document.clone());
        }
    }
}

/// The type of the operation `name` picks from `document` (or its only one).
pub fn operation_type(document: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}
