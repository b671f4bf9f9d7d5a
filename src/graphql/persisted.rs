//! Persisted operations: documents a client names by their SHA-256 instead
//! of sending them (Apollo's automatic persisted queries, which Apollo
//! Client and urql speak), and the allow-list mode in which only known
//! operations run.
//!
//! The protocol: a request carries `extensions.persistedQuery { version: 1,
//! sha256Hash }`. With its document, the hash is checked and the document
//! kept; without it, the kept document runs, or the answer is
//! `PersistedQueryNotFound` (code `PERSISTED_QUERY_NOT_FOUND`) and the
//! client sends the document again with its hash. Kept documents live in
//! this process only, in a bounded LRU: a server that restarted, or another
//! replica, costs a client one such round trip, which the protocol is built
//! for, where keeping them in the database would cost every registration a
//! write and every replica a read path for a few kilobytes of text.
//!
//! The allow list (`EXECSTORE_OPERATIONS`, a `.graphql` file or a folder of
//! them) is a set of documents. A request runs only when its document is
//! one of them up to the tokens GraphQL ignores (whitespace, commas,
//! comments), so a client may send the text as its tooling prints it, or
//! the SHA-256 of a file's exact text (the listed documents are known by
//! their hash from the start), or register a listed document by APQ.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_graphql::{ErrorExtensionValues, Request, ServerError, Value};
use sha2::{Digest, Sha256};

use super::error::code;

/// Documents kept from clients' registrations, at most.
pub const KEPT_DOCUMENTS: NonZeroUsize = match NonZeroUsize::new(1024) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};
/// A registered document longer than this runs but is not kept (the client
/// then sends it whole each time): the LRU is bounded in bytes too.
pub const LARGEST_KEPT: usize = 64 * 1024;

pub struct PersistedOperations {
    kept: Mutex<lru::LruCache<String, Arc<str>>>,
    allowed: Option<AllowList>,
    /// Admin tokens run any operation in allow-list mode.
    admins_run_any: bool,
}

/// The listed documents: by canonical form (what a request's text must
/// match) and by the SHA-256 of each file's text.
struct AllowList {
    canonical: HashSet<String>,
    by_hash: HashMap<String, Arc<str>>,
}

impl Default for PersistedOperations {
    fn default() -> Self {
        Self::new(None, false)
    }
}

impl PersistedOperations {
    fn new(allowed: Option<AllowList>, admins_run_any: bool) -> Self {
        Self {
            kept: Mutex::new(lru::LruCache::new(KEPT_DOCUMENTS)),
            allowed,
            admins_run_any,
        }
    }

    /// The allow-list mode from `path` (a file or a folder of `.graphql` /
    /// `.gql` files, read recursively); every document must parse.
    pub fn allow_only(path: &Path, admins_run_any: bool) -> Result<Self, String> {
        let mut files = Vec::new();
        collect(path, &mut files)?;
        if files.is_empty() {
            return Err(format!(
                "EXECSTORE_OPERATIONS: no .graphql document under {}",
                path.display()
            ));
        }
        let mut list = AllowList {
            canonical: HashSet::new(),
            by_hash: HashMap::new(),
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("EXECSTORE_OPERATIONS: {}: {e}", file.display()))?;
            async_graphql::parser::parse_query(&text).map_err(|e| {
                format!(
                    "EXECSTORE_OPERATIONS: {} is not a GraphQL document: {e}",
                    file.display()
                )
            })?;
            list.canonical.insert(canonical(&text));
            list.by_hash.insert(sha256(&text), text.into());
        }
        Ok(Self::new(Some(list), admins_run_any))
    }

    /// The text of a document known by `hash`, if any.
    fn known(&self, hash: &str) -> Option<Arc<str>> {
        if let Some(text) = self.allowed.as_ref().and_then(|a| a.by_hash.get(hash)) {
            return Some(text.clone());
        }
        self.kept.lock().ok()?.get(hash).cloned()
    }

    /// Before parsing (the HTTP layer, which parses once and routes the
    /// request by its operation): a request naming a known persisted query
    /// without its text gets the text, and loses the extension, so it runs
    /// as if sent whole (the allow list is still checked on it) and is not
    /// hashed again. A malformed or unknown one is left for `resolve` to
    /// answer.
    pub fn fill_known(&self, request: &mut Request) {
        if !request.query.is_empty() {
            return;
        }
        let hash = request.extensions.get("persistedQuery").map(persisted_hash);
        if let Some(text) = hash.and_then(Result::ok).and_then(|h| self.known(&h)) {
            request.query = text.to_string();
            request.extensions.remove("persistedQuery");
        }
    }

    /// Resolves `request` before it runs: its persisted query's document
    /// found (or checked against its hash and kept), and in allow-list mode
    /// its document checked against the list (`admin`: the viewer is an
    /// admin, whom a setting may let through).
    pub fn resolve(&self, request: &mut Request, admin: bool) -> Result<(), ServerError> {
        if let Some(value) = request.extensions.remove("persistedQuery") {
            let hash = persisted_hash(&value)?;
            if request.query.is_empty() {
                match self.known(&hash) {
                    Some(text) => request.query = text.to_string(),
                    None => return Err(not_found()),
                }
            } else if sha256(&request.query) != hash {
                return Err(error(
                    code::BAD_USER_INPUT,
                    "persistedQuery.sha256Hash is not the SHA-256 of the query",
                ));
            } else {
                self.check_allowed(&request.query, admin)?;
                if request.query.len() <= LARGEST_KEPT {
                    if let Ok(mut kept) = self.kept.lock() {
                        kept.put(hash, request.query.as_str().into());
                    }
                }
                return Ok(());
            }
        }
        self.check_allowed(&request.query, admin)
    }

    fn check_allowed(&self, query: &str, admin: bool) -> Result<(), ServerError> {
        let Some(list) = &self.allowed else {
            return Ok(());
        };
        if self.admins_run_any && admin {
            return Ok(());
        }
        if list.canonical.contains(&canonical(query)) {
            return Ok(());
        }
        Err(error(
            code::OPERATION_NOT_ALLOWED,
            "this server runs only the operations it lists (EXECSTORE_OPERATIONS); this document is not one of them",
        ))
    }
}

/// `extensions.persistedQuery`'s hash, once its shape is checked.
fn persisted_hash(value: &Value) -> Result<String, ServerError> {
    let invalid = |why: &str| {
        error(
            code::BAD_USER_INPUT,
            format!("invalid persistedQuery: {why}"),
        )
    };
    let Value::Object(fields) = value else {
        return Err(invalid("expected { version: 1, sha256Hash }"));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_i64() == Some(1) => {}
        _ => return Err(invalid("only version 1 is supported")),
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(hash.to_ascii_lowercase())
        }
        _ => Err(invalid("sha256Hash must be 64 hexadecimal digits")),
    }
}

/// The protocol's answer to a hash the server does not know.
pub fn not_found() -> ServerError {
    error(code::PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
}

fn error(code: &'static str, message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

pub fn sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The document's significant tokens, one space between each: two texts of
/// the same document that differ only in whitespace, commas or comments
/// (the tokens GraphQL ignores) have the same canonical form.
pub fn canonical(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let push = |out: &mut String, token: &str| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(token);
    };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            _ if is_ignored(b) => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                let start = i;
                if bytes[i..].starts_with(b"\"\"\"") {
                    i += 3;
                    while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                        i += if bytes[i..].starts_with(b"\\\"\"\"") {
                            4
                        } else {
                            1
                        };
                    }
                    i = (i + 3).min(bytes.len());
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i = (i + 1).min(bytes.len());
                }
                push(&mut out, &text[start..i]);
            }
            _ if is_punctuator(b) => {
                push(&mut out, &text[i..i + 1]);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                push(&mut out, "...");
                i += 3;
            }
            // A name, a number, or any other run up to the next of the
            // above (every byte that ends a run is ASCII: the slice is whole
            // characters, and never empty).
            _ => {
                let start = i;
                while i < bytes.len()
                    && !is_ignored(bytes[i])
                    && !is_punctuator(bytes[i])
                    && !matches!(bytes[i], b'#' | b'"')
                    && !bytes[i..].starts_with(b"...")
                {
                    i += 1;
                }
                push(&mut out, &text[start..i]);
            }
        }
    }
    out
}

/// Whitespace and commas: GraphQL's ignored tokens (comments aside).
fn is_ignored(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',')
}

/// GraphQL's one-byte punctuators (`...` is the other).
fn is_punctuator(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'(' | b')' | b':' | b'=' | b'@' | b'[' | b']' | b'{' | b'|' | b'}'
    )
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("EXECSTORE_OPERATIONS: {}: {e}", path.display()))?;
    if meta.is_file() {
        files.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("EXECSTORE_OPERATIONS: {}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if entry
            .extension()
            .is_some_and(|x| x == "graphql" || x == "gql")
        {
            files.push(entry);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_ignore_what_graphql_ignores() {
        let a = "query Feed($id: ID!, $first: Int) {\n  childFeed(rootExecutionId: $id, first: $first) { # page\n    edges { cursor } } }";
        let b = "query Feed($id:ID! $first:Int){childFeed(rootExecutionId:$id,first:$first){edges{cursor}}}";
        assert_eq!(canonical(a), canonical(b));
        let c = "query Feed($id:ID! $first:Int){childFeed(rootExecutionId:$id,first:$first){edges{node{id}}}}";
        assert_ne!(canonical(a), canonical(c));
        // Inside strings nothing is ignored.
        assert_ne!(
            canonical(r#"{ a(s: "x, y") }"#),
            canonical(r#"{ a(s: "x y") }"#)
        );
        assert_eq!(
            canonical("{ ...F } fragment F on Q { a }"),
            "{ ... F } fragment F on Q { a }"
        );
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert_eq!(
            sha256("{__typename}"),
            "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"
        );
    }

    fn persisted(hash: &str) -> Value {
        let mut fields = async_graphql::indexmap::IndexMap::new();
        fields.insert(async_graphql::Name::new("version"), Value::from(1));
        fields.insert(async_graphql::Name::new("sha256Hash"), Value::from(hash));
        Value::Object(fields)
    }

    fn code_of(err: &ServerError) -> Option<String> {
        match err.extensions.as_ref()?.get("code")? {
            Value::String(code) => Some(code.clone()),
            _ => None,
        }
    }

    #[test]
    fn unknown_then_registered_then_found() {
        let store = PersistedOperations::default();
        let text = "{__typename}";
        let hash = sha256(text);
        let mut request = Request::new("");
        request
            .extensions
            .insert("persistedQuery".into(), persisted(&hash));
        let err = store.resolve(&mut request, false).unwrap_err();
        assert_eq!(err.message, "PersistedQueryNotFound");
        assert_eq!(
            code_of(&err).as_deref(),
            Some(code::PERSISTED_QUERY_NOT_FOUND)
        );

        let mut wrong = Request::new("{ other }");
        wrong
            .extensions
            .insert("persistedQuery".into(), persisted(&hash));
        assert!(store.resolve(&mut wrong, false).is_err());

        let mut register = Request::new(text);
        register
            .extensions
            .insert("persistedQuery".into(), persisted(&hash));
        store.resolve(&mut register, false).unwrap();

        let mut again = Request::new("");
        again
            .extensions
            .insert("persistedQuery".into(), persisted(&hash));
        store.resolve(&mut again, false).unwrap();
        assert_eq!(again.query, text);
    }
}
