//! Drives the real router: in-process with `oneshot`, or over TCP on loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use execstore::config::Config;
use execstore::store::ExecutionStore;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::harness::{fresh, Backend, TestDb};

pub struct Api {
    pub t: TestDb,
    pub store: ExecutionStore,
    pub router: Router,
    /// Statements the router's store has sent since the last `reset`.
    pub statements: Arc<AtomicUsize>,
    pub token: Option<String>,
}

impl Api {
    pub async fn new(backend: Backend) -> Self {
        Self::with_config(backend, Config::defaults()).await
    }

    pub async fn with_config(backend: Backend, config: Config) -> Self {
        let t = fresh(backend).await;
        let statements = Arc::new(AtomicUsize::new(0));
        let mut counted = t.db.clone();
        let counter = statements.clone();
        counted.set_metric_callback(move |info| {
            if std::env::var_os("SHOW_SQL").is_some() {
                eprintln!(
                    "SQL: {}",
                    info.statement.sql.chars().take(120).collect::<String>()
                );
            }
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let store = ExecutionStore::new(counted);
        let router = execstore::http::router(store.clone(), &config).expect("router");
        Self {
            t,
            store,
            router,
            statements,
            token: None,
        }
    }

    pub fn reset_statements(&self) -> usize {
        self.statements.swap(0, Ordering::SeqCst)
    }

    pub async fn raw(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router answers");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// POSTs a GraphQL request body; returns the status and parsed JSON.
    pub async fn post_json(&self, body: &Value) -> (StatusCode, Value) {
        let mut builder = Request::post("/graphql").header("content-type", "application/json");
        if let Some(token) = &self.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let (status, text) = self
            .raw(builder.body(Body::from(body.to_string())).unwrap())
            .await;
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("JSON response, got {status}: {text}"));
        (status, value)
    }

    pub async fn query(&self, query: &str, variables: Value) -> Value {
        self.post_json(&json!({ "query": query, "variables": variables }))
            .await
            .1
    }

    /// Runs an operation that must succeed; returns `data`.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let response = self.query(query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response}"
        );
        response["data"].clone()
    }

    /// Runs an operation that must fail; returns the first error's code.
    pub async fn error_code(&self, query: &str, variables: Value) -> String {
        let response = self.query(query, variables).await;
        let code = response["errors"][0]["extensions"]["code"].as_str();
        code.unwrap_or_else(|| panic!("expected an error with a code: {response}"))
            .to_owned()
    }

    /// Serves the router on a loopback port for real HTTP clients.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router.clone();
        tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        addr
    }
}

pub const CREATE: &str = "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id rootExecutionId parentExecutionId executionDepth status } }";

pub async fn create(api: &Api, id: &str, parent: Option<&str>) -> Value {
    let input =
        json!({ "id": id, "flowId": "flow-1", "ownerId": "owner-1", "parentExecutionId": parent });
    api.ok(CREATE, json!({ "input": input })).await["createExecution"].clone()
}

/// A loopback TCP proxy: stopping it drops every connection through it and
/// closes its port, as a server that went down would; starting another on
/// the same address brings "the server" back.
pub struct Proxy {
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut accepting = stopped.clone();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { break };
                        let mut stopped = stopped.clone();
                        tokio::spawn(async move {
                            let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                                return;
                            };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = stopped.changed() => {}
                            }
                        });
                    }
                    _ = accepting.changed() => break,
                }
            }
        });
        Proxy { addr, stop }
    }

    /// Drops every connection and closes the port.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}
