//! Headless Chromium (Debian's `chromium`, or `EXECSTORE_CHROMIUM`) driven
//! over the DevTools protocol by chromiumoxide, for the pages execstore
//! serves. Every request a page makes to a host other than 127.0.0.1 is
//! refused and recorded: the tests assert there were none.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EnableParams, EventRequestPaused, FailRequestParams, RequestPattern,
};
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, EventWebSocketCreated};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

pub struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    /// URLs of requests that tried to leave 127.0.0.1 (refused).
    pub outside: Arc<Mutex<Vec<String>>>,
    /// Every request let through, as "METHOD path".
    pub sent: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

fn executable() -> String {
    std::env::var("EXECSTORE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn is_local(url: &str) -> bool {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host == "127.0.0.1"
}

impl Chromium {
    pub async fn launch() -> Chromium {
        let executable = executable();
        assert!(
            std::path::Path::new(&executable).exists(),
            "the browser tests need Chromium at {executable}: `apt-get install chromium` \
             (scripts/test.sh installs it), or set EXECSTORE_CHROMIUM"
        );
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(&executable)
            .user_data_dir(profile.path())
            .no_sandbox()
            .new_headless_mode()
            .window_size(1400, 900)
            .viewport(None)
            .request_timeout(Duration::from_secs(30))
            .args([
                "--disable-gpu",
                "--disable-quic",
                "--disable-component-update",
                "--no-default-browser-check",
                // Belt and braces: names other than 127.0.0.1 do not resolve.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ])
            .build()
            .expect("browser config");
        let (browser, mut events) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("start {executable}: {e}"));
        let handler = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if event.is_err() {
                    break;
                }
            }
        });
        Chromium {
            browser,
            handler,
            outside: Arc::new(Mutex::new(Vec::new())),
            sent: Arc::new(Mutex::new(Vec::new())),
            _profile: profile,
        }
    }

    /// A new tab at `url`, with every request checked before it leaves.
    pub async fn open(&self, url: &str) -> Arc<Page> {
        let page = Arc::new(self.browser.new_page("about:blank").await.expect("new tab"));
        let mut paused = page
            .event_listener::<EventRequestPaused>()
            .await
            .expect("listen for requests");
        let mut sockets = page
            .event_listener::<EventWebSocketCreated>()
            .await
            .expect("listen for websockets");
        let (gate, outside, sent) = (page.clone(), self.outside.clone(), self.sent.clone());
        tokio::spawn(async move {
            while let Some(event) = paused.next().await {
                let id = event.request_id.clone();
                if is_local(&event.request.url) {
                    let path = event.request.url.splitn(4, '/').nth(3).unwrap_or("");
                    let path = path.split(['?', '#']).next().unwrap_or("");
                    sent.lock()
                        .unwrap()
                        .push(format!("{} /{path}", event.request.method));
                    let _ = gate.execute(ContinueRequestParams::new(id)).await;
                } else {
                    outside.lock().unwrap().push(event.request.url.clone());
                    let _ = gate
                        .execute(FailRequestParams::new(id, ErrorReason::BlockedByClient))
                        .await;
                }
            }
        });
        let outside = self.outside.clone();
        tokio::spawn(async move {
            while let Some(event) = sockets.next().await {
                if !is_local(&event.url) {
                    outside.lock().unwrap().push(event.url.clone());
                }
            }
        });
        page.execute(
            EnableParams::builder()
                .pattern(RequestPattern::builder().url_pattern("*").build())
                .build(),
        )
        .await
        .expect("intercept requests");
        page.goto(url).await.expect("navigate");
        page
    }

    /// How many requests the pages sent as `what` ("POST /graphql").
    pub fn sent(&self, what: &str) -> usize {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|s| *s == what)
            .count()
    }

    /// Closes the browser, then fails the test if any page tried to reach a
    /// host other than 127.0.0.1.
    pub async fn close_with_nothing_sent_outside(mut self) {
        let outside = self.outside.lock().unwrap().clone();
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
        assert!(outside.is_empty(), "requests left 127.0.0.1: {outside:?}");
    }
}

/// Evaluates `expression` in the page.
pub async fn eval<T: DeserializeOwned>(page: &Page, expression: &str) -> T {
    page.evaluate(expression)
        .await
        .unwrap_or_else(|e| panic!("evaluate {expression}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("value of {expression}: {e}"))
}

/// Clicks the element `selector_expression` (a JavaScript expression) names.
pub async fn click(page: &Page, selector_expression: &str) {
    let _: serde_json::Value = eval(page, &format!("({selector_expression}.click(), true)")).await;
}

/// The explorer's tree row of execution `id`, as a JavaScript expression.
pub fn tree_row(id: &str) -> String {
    format!("document.querySelector('#tree .row[data-id=\"{id}\"]')")
}

/// Polls `expression` until it is truthy (bounded); what the page shows
/// when it never becomes so is in the panic message.
pub async fn wait_until(page: &Page, expression: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let value: serde_json::Value = page
            .evaluate(format!(
                "(() => {{ try {{ return Boolean({expression}); }} catch (e) {{ return false; }} }})()"
            ))
            .await
            .ok()
            .and_then(|r| r.into_value().ok())
            .unwrap_or(serde_json::Value::Null);
        let truthy = match &value {
            serde_json::Value::Null => false,
            serde_json::Value::Bool(b) => *b,
            serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
            serde_json::Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return;
        }
        if Instant::now() >= deadline {
            let text: String = eval(page, "document.body.innerText.slice(0, 2000)").await;
            panic!("page condition not met within {limit:?}: {expression}\npage text: {text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Saves a PNG of the page under `target/test-artifacts/` and returns its path.
pub async fn screenshot(page: &Page, name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    page.save_screenshot(
        ScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Png)
            .full_page(false)
            .build(),
        &path,
    )
    .await
    .expect("screenshot");
    path
}
