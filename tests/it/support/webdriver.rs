//! A small W3C WebDriver client for the browser tests: headless Chromium driven by chromedriver.
//!
//! Only reqwest, serde_json, tokio and base64 (all already dependencies). Each [`Browser`] starts
//! its own `chromedriver --port=<free port>` child, waits for `/status` to report ready (polling,
//! bounded), opens one session and cleans everything up on drop: the session is deleted (which
//! closes Chromium), chromedriver is killed and the throwaway profile directory removed.
//!
//! Helpers other than [`Browser::launch`] panic with a descriptive message on failure: they are
//! meant to be called from tests, where a panic with the selector and URL is the useful outcome.
//!
//! Environment: `CHROMEDRIVER` (default: `chromedriver` on `PATH`), `CHROME_BIN` (default
//! `/usr/bin/chromium`). Install both on Debian/Ubuntu with
//! `sudo apt-get install chromium chromium-driver`.
//!
//! Spec: <https://www.w3.org/TR/webdriver2/> (endpoints and error codes used below).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The key under which W3C WebDriver serialises an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long chromedriver may take to answer `/status` with `ready: true`.
const DRIVER_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Interval between polls in `wait_for*` and while waiting for chromedriver.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

const INSTALL_HINT: &str = "install headless Chromium and its driver with \
    `sudo apt-get install chromium chromium-driver` (Debian/Ubuntu), \
    or point CHROMEDRIVER and CHROME_BIN at existing binaries";

/// Chromium flags for running headless as root in a sandbox-less container with no network
/// except localhost. The background-networking flags keep Chromium from flooding the closed
/// network with connection attempts (updates, sync, field trials, QUIC probes).
const CHROME_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--lang=en-US",
];

/// Limits how many browsers run at once in one test binary (tests run on parallel threads,
/// and several Chromium instances on a 2-core CI machine make every test slow and flaky).
fn browser_slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            Arc::new(Semaphore::new(cores.clamp(2, 4)))
        })
        .clone()
}

/// An error answered by chromedriver (or a transport failure talking to it).
#[derive(Debug, Clone)]
pub struct WdError {
    /// The W3C error code, e.g. `no such element`, `stale element reference`; `transport` when
    /// the request itself failed.
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// A cookie as reported by the browser (`GET /session/{id}/cookie`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: Option<String>,
    /// Seconds since the epoch; `None` for a session cookie.
    pub expiry: Option<u64>,
}

impl Cookie {
    fn from_json(v: &Value) -> Cookie {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Cookie {
            name: s("name").unwrap_or_default(),
            value: s("value").unwrap_or_default(),
            path: s("path"),
            domain: s("domain"),
            secure: v.get("secure").and_then(Value::as_bool).unwrap_or(false),
            http_only: v.get("httpOnly").and_then(Value::as_bool).unwrap_or(false),
            same_site: s("sameSite"),
            expiry: v.get("expiry").and_then(Value::as_u64),
        }
    }
}

/// The HTTP side of one WebDriver session; cheap to clone (elements carry one).
#[derive(Clone)]
struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    url: String,
}

impl Session {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let url = format!("{}{}", self.url, path);
        send(&self.http, method, &url, body).await
    }

    async fn get(&self, path: &str) -> Result<Value, WdError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, WdError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn find_in(&self, scope: &str, css: &str) -> Result<Option<Element>, WdError> {
        let found = self
            .post(
                &format!("{scope}/element"),
                json!({"using": "css selector", "value": css}),
            )
            .await;
        match found {
            Ok(v) => Ok(Some(self.element(&v)?)),
            Err(e) if e.error == "no such element" => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn find_all_in(&self, scope: &str, css: &str) -> Result<Vec<Element>, WdError> {
        let v = self
            .post(
                &format!("{scope}/elements"),
                json!({"using": "css selector", "value": css}),
            )
            .await?;
        let list = v.as_array().cloned().unwrap_or_default();
        list.iter().map(|e| self.element(e)).collect()
    }

    fn element(&self, v: &Value) -> Result<Element, WdError> {
        let id = v
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .ok_or_else(|| WdError {
                error: "protocol".into(),
                message: format!("expected an element reference, got {v}"),
            })?;
        Ok(Element {
            session: self.clone(),
            id: id.to_owned(),
        })
    }
}

/// Sends one WebDriver command and unwraps the `{"value": ...}` envelope.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WdError> {
    let transport = |e: reqwest::Error| WdError {
        error: "transport".into(),
        message: format!("{url}: {e}"),
    };
    let mut req = http.request(method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status();
    let mut v: Value = resp.json().await.map_err(transport)?;
    let value = v.get_mut("value").map(Value::take).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    let field = |k: &str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Err(WdError {
        error: if field("error").is_empty() {
            format!("HTTP {status}")
        } else {
            field("error")
        },
        message: field("message"),
    })
}

/// A headless Chromium controlled through its own chromedriver process.
pub struct Browser {
    session: Session,
    session_id: String,
    driver_port: u16,
    driver: Child,
    profile_dir: PathBuf,
    _slot: OwnedSemaphorePermit,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium session (1280x900, empty profile).
    ///
    /// Binaries come from `CHROMEDRIVER` (else `chromedriver` on `PATH`) and `CHROME_BIN`
    /// (else `/usr/bin/chromium`). When either is missing the error says how to install them.
    pub async fn launch() -> Result<Browser, String> {
        let driver = match std::env::var_os("CHROMEDRIVER") {
            Some(p) => PathBuf::from(p),
            None => find_on_path("chromedriver")
                .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver")),
        };
        let chrome = std::env::var_os("CHROME_BIN")
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        Browser::launch_with(&driver, &chrome).await
    }

    /// Like [`Browser::launch`] with explicit binaries.
    pub async fn launch_with(driver: &Path, chrome: &Path) -> Result<Browser, String> {
        if !driver.is_file() {
            return Err(format!(
                "chromedriver not found at {}; {INSTALL_HINT}",
                driver.display()
            ));
        }
        if !chrome.is_file() {
            return Err(format!(
                "Chromium not found at {}; {INSTALL_HINT}",
                chrome.display()
            ));
        }
        let slot = browser_slots()
            .acquire_owned()
            .await
            .expect("the browser semaphore is never closed");

        let profile_dir = unique_temp_dir()?;
        let log_path = profile_dir.join("chromedriver.log");
        let port = free_port()?;
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Pages may render local times: make them deterministic.
            .env("TZ", "UTC")
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile_dir);
                return Err(format!(
                    "could not start {}: {e}; {INSTALL_HINT}",
                    driver.display()
                ));
            }
        };

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| e.to_string())?;
        let base = format!("http://127.0.0.1:{port}");

        // From here on, failures must not leak the chromedriver process.
        let fail = |child: &mut Child, msg: String| {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let _ = std::fs::remove_dir_all(&profile_dir);
            format!(
                "{msg}\n--- chromedriver log (tail) ---\n{}",
                tail.join("\n")
            )
        };

        // Wait for readiness by polling /status, bounded; never a fixed sleep.
        let deadline = Instant::now() + DRIVER_READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(fail(
                    &mut child,
                    format!("chromedriver exited early ({status})"),
                ));
            }
            let ready = send(&http, reqwest::Method::GET, &format!("{base}/status"), None).await;
            if matches!(&ready, Ok(v) if v.get("ready").and_then(Value::as_bool) == Some(true)) {
                break;
            }
            if Instant::now() >= deadline {
                let msg =
                    format!("chromedriver on port {port} not ready after {DRIVER_READY_TIMEOUT:?}");
                return Err(fail(&mut child, msg));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }

        let mut args: Vec<String> = CHROME_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            profile_dir.join("profile").display()
        ));
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": { "binary": chrome, "args": args },
                    "goog:loggingPrefs": { "browser": "ALL" },
                }
            }
        });
        let created = send(
            &http,
            reqwest::Method::POST,
            &format!("{base}/session"),
            Some(caps),
        )
        .await;
        let session_id = match created {
            Ok(v) => match v.get("sessionId").and_then(Value::as_str) {
                Some(id) => id.to_owned(),
                None => {
                    return Err(fail(
                        &mut child,
                        format!("unexpected new-session answer: {v}"),
                    ))
                }
            },
            Err(e) => {
                let msg = format!(
                    "could not start Chromium ({}): {e}; {INSTALL_HINT}",
                    chrome.display()
                );
                return Err(fail(&mut child, msg));
            }
        };

        let browser = Browser {
            session: Session {
                http,
                url: format!("{base}/session/{session_id}"),
            },
            session_id,
            driver_port: port,
            driver: child,
            profile_dir,
            _slot: slot,
        };
        // Explicit waits only (wait_for*): an implicit wait would slow every absence check.
        browser
            .session
            .post(
                "/timeouts",
                json!({"implicit": 0, "pageLoad": 30_000, "script": 30_000}),
            )
            .await
            .map_err(|e| format!("setting timeouts: {e}"))?;
        Ok(browser)
    }

    /// Navigates and waits for the page load to complete.
    pub async fn goto(&self, url: &str) {
        self.session
            .post("/url", json!({ "url": url }))
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    pub async fn current_url(&self) -> String {
        let v = self
            .session
            .get("/url")
            .await
            .unwrap_or_else(|e| panic!("current_url: {e}"));
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn title(&self) -> String {
        let v = self
            .session
            .get("/title")
            .await
            .unwrap_or_else(|e| panic!("title: {e}"));
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn back(&self) {
        self.session
            .post("/back", json!({}))
            .await
            .unwrap_or_else(|e| panic!("back: {e}"));
    }

    pub async fn refresh(&self) {
        self.session
            .post("/refresh", json!({}))
            .await
            .unwrap_or_else(|e| panic!("refresh: {e}"));
    }

    pub async fn page_source(&self) -> String {
        let v = self
            .session
            .get("/source")
            .await
            .unwrap_or_else(|e| panic!("page_source: {e}"));
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching `css`; panics when there is none (see [`Browser::try_find`]).
    pub async fn find(&self, css: &str) -> Element {
        match self.try_find(css).await {
            Some(el) => el,
            None => panic!("no element matches `{css}` on {}", self.current_url().await),
        }
    }

    /// The first element matching `css`, or `None`. Does not wait.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        self.session
            .find_in("", css)
            .await
            .unwrap_or_else(|e| panic!("find `{css}`: {e}"))
    }

    /// All elements matching `css`, in document order (possibly none). Does not wait.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.session
            .find_all_in("", css)
            .await
            .unwrap_or_else(|e| panic!("find_all `{css}`: {e}"))
    }

    /// Polls until an element matching `css` is present in the DOM; panics after `timeout`
    /// (saving a screenshot named after the selector).
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            // Errors can be transient while a navigation is in flight: keep polling.
            match self.session.find_in("", css).await {
                Ok(Some(el)) => return el,
                Ok(None) => {}
                Err(e) => last_error = Some(e),
            }
            if Instant::now() >= deadline {
                let shot = self.save_screenshot(&format!("timeout-{css}")).await;
                let error = last_error
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default();
                panic!(
                    "no element matches `{css}` on {} after {timeout:?}{error} (screenshot: {})",
                    self.current_url().await,
                    shot.display()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Polls until no element matches `css`: what a script removes in answer to a click (a
    /// closed `<dialog>` is removed on its `close` event, which the browser fires later).
    pub async fn wait_for_gone(&self, css: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(None) = self.session.find_in("", css).await {
                return;
            }
            if Instant::now() >= deadline {
                let shot = self.save_screenshot(&format!("still-{css}")).await;
                panic!(
                    "`{css}` is still on {} after {timeout:?} (screenshot: {})",
                    self.current_url().await,
                    shot.display()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Polls until an element matching `css` has visible text containing `text`; returns it.
    /// Tolerates the DOM being swapped between polls (stale elements), as htmx does.
    pub async fn wait_for_text(&self, css: &str, text: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        let mut seen: Vec<String> = Vec::new();
        loop {
            seen.clear();
            if let Ok(elements) = self.session.find_all_in("", css).await {
                for el in elements {
                    // A stale element just means the page changed under us: poll again.
                    if let Ok(t) = el.try_text().await {
                        if t.contains(text) {
                            return el;
                        }
                        seen.push(t);
                    }
                }
            }
            if Instant::now() >= deadline {
                let shot = self.save_screenshot(&format!("timeout-{css}")).await;
                panic!(
                    "no `{css}` containing {text:?} on {} after {timeout:?}; saw {seen:?} (screenshot: {})",
                    self.current_url().await,
                    shot.display()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Polls until the current URL contains `fragment`; returns the URL.
    pub async fn wait_for_url(&self, fragment: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await;
            if url.contains(fragment) {
                return url;
            }
            if Instant::now() >= deadline {
                panic!("URL never contained {fragment:?} within {timeout:?}; last {url}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Runs `script` as a function body (`return ...;` for a value). Pass elements with
    /// [`Element::as_arg`]; they are `arguments[i]` in the script.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.session
            .post("/execute/sync", json!({ "script": script, "args": args }))
            .await
            .unwrap_or_else(|e| panic!("execute: {e}"))
    }

    /// A PNG of the viewport.
    pub async fn screenshot_png(&self) -> Vec<u8> {
        let v = self
            .session
            .get("/screenshot")
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("chromedriver returns base64 screenshots")
    }

    /// Writes a screenshot to `target/browser-screenshots/<name>.png` and returns the path.
    /// Unsafe characters in `name` become `_`. Best effort: a failure is reported, not fatal.
    pub async fn save_screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshot_dir();
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{safe}.png"));
        let png = match self.session.get("/screenshot").await {
            Ok(v) => base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .ok(),
            Err(_) => None,
        };
        let written =
            png.map(|png| std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, png)));
        if !matches!(written, Some(Ok(()))) {
            eprintln!("could not save screenshot {}", path.display());
        }
        path
    }

    /// Resizes the window (the viewport follows in headless Chromium).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.session
            .post("/window/rect", json!({ "width": width, "height": height }))
            .await
            .unwrap_or_else(|e| panic!("set window size {width}x{height}: {e}"));
    }

    /// Emulates a screen of this size (`mobile`: a phone, honouring the page's viewport
    /// meta tag) through Chromium's DevTools, exactly, whatever the window's minimum size.
    pub async fn set_viewport(&self, width: u32, height: u32, mobile: bool) {
        self.session
            .post(
                "/goog/cdp/execute",
                json!({
                    "cmd": "Emulation.setDeviceMetricsOverride",
                    "params": { "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile },
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("set viewport {width}x{height}: {e}"));
    }

    /// Like [`Browser::save_screenshot`], but of the whole page, not only the viewport
    /// (Chromium's DevTools `Page.captureScreenshot` beyond the viewport). Best effort.
    /// `name` may hold `/` to sort screenshots into folders (`pages/390/keys`).
    pub async fn save_full_page_screenshot(&self, name: &str) -> PathBuf {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_./".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let safe = safe.replace("..", "_");
        let path = screenshot_dir().join(format!("{safe}.png"));
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(screenshot_dir);
        let shot = self
            .session
            .post(
                "/goog/cdp/execute",
                json!({
                    "cmd": "Page.captureScreenshot",
                    "params": { "format": "png", "captureBeyondViewport": true },
                }),
            )
            .await;
        let png = shot.ok().and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v["data"].as_str().unwrap_or_default())
                .ok()
        });
        let written =
            png.map(|png| std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, png)));
        if !matches!(written, Some(Ok(()))) {
            eprintln!("could not save screenshot {}", path.display());
        }
        path
    }

    /// All cookies visible to the current page.
    pub async fn cookies(&self) -> Vec<Cookie> {
        let v = self
            .session
            .get("/cookie")
            .await
            .unwrap_or_else(|e| panic!("cookies: {e}"));
        v.as_array()
            .map(|a| a.iter().map(Cookie::from_json).collect())
            .unwrap_or_default()
    }

    pub async fn cookie(&self, name: &str) -> Option<Cookie> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    pub async fn delete_cookies(&self) {
        self.session
            .call(reqwest::Method::DELETE, "/cookie", None)
            .await
            .unwrap_or_else(|e| panic!("delete_cookies: {e}"));
    }

    /// The text of an open `alert`/`confirm` (e.g. from `hx-confirm`), if any.
    pub async fn alert_text(&self) -> Option<String> {
        match self.session.get("/alert/text").await {
            Ok(v) => v.as_str().map(str::to_owned),
            Err(e) if e.error == "no such alert" => None,
            Err(e) => panic!("alert_text: {e}"),
        }
    }

    pub async fn accept_alert(&self) {
        self.session
            .post("/alert/accept", json!({}))
            .await
            .unwrap_or_else(|e| panic!("accept_alert: {e}"));
    }

    pub async fn dismiss_alert(&self) {
        self.session
            .post("/alert/dismiss", json!({}))
            .await
            .unwrap_or_else(|e| panic!("dismiss_alert: {e}"));
    }

    /// Browser console entries since the last call (chromedriver extension), each with
    /// `level` and `message`; useful to assert there are no CSP violations or JS errors.
    pub async fn console_logs(&self) -> Vec<Value> {
        let v = self
            .session
            .post("/se/log", json!({ "type": "browser" }))
            .await
            .unwrap_or_else(|e| panic!("console_logs: {e}"));
        v.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop cannot await, and may run while a runtime is shutting down or after a panic, so
        // the DELETE goes over a plain blocking socket. Deleting the session closes Chromium;
        // killing chromedriver first would orphan it.
        delete_session_blocking(self.driver_port, &self.session_id);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile_dir);
    }
}

/// An element reference in the current page. Goes stale when the page or an htmx swap
/// replaces the node; find it again then.
#[derive(Clone)]
pub struct Element {
    session: Session,
    id: String,
}

impl std::fmt::Debug for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Element({})", self.id)
    }
}

impl Element {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    /// The reference to pass in [`Browser::execute`] args.
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    pub async fn click(&self) {
        self.session
            .post(&self.path("/click"), json!({}))
            .await
            .unwrap_or_else(|e| panic!("click: {e}"));
    }

    /// Types `text` into the element (appends to its current value).
    pub async fn send_keys(&self, text: &str) {
        self.session
            .post(&self.path("/value"), json!({ "text": text }))
            .await
            .unwrap_or_else(|e| panic!("send_keys: {e}"));
    }

    pub async fn clear(&self) {
        self.session
            .post(&self.path("/clear"), json!({}))
            .await
            .unwrap_or_else(|e| panic!("clear: {e}"));
    }

    /// The rendered (visible) text, as a user would read it.
    pub async fn text(&self) -> String {
        self.try_text()
            .await
            .unwrap_or_else(|e| panic!("text: {e}"))
    }

    async fn try_text(&self) -> Result<String, WdError> {
        let v = self.session.get(&self.path("/text")).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute as written in the HTML (`None` when absent).
    pub async fn attr(&self, name: &str) -> Option<String> {
        let v = self
            .session
            .get(&self.path(&format!("/attribute/{name}")))
            .await;
        let v = v.unwrap_or_else(|e| panic!("attr {name}: {e}"));
        v.as_str().map(str::to_owned)
    }

    /// A DOM property (e.g. `value`, `checked`), which reflects user input unlike `attr`.
    pub async fn property(&self, name: &str) -> Value {
        let v = self
            .session
            .get(&self.path(&format!("/property/{name}")))
            .await;
        v.unwrap_or_else(|e| panic!("property {name}: {e}"))
    }

    pub async fn is_displayed(&self) -> bool {
        let v = self.session.get(&self.path("/displayed")).await;
        v.unwrap_or_else(|e| panic!("is_displayed: {e}"))
            .as_bool()
            .unwrap_or(false)
    }

    /// The first descendant matching `css`; panics when there is none.
    pub async fn find(&self, css: &str) -> Element {
        let found = self.session.find_in(&self.path(""), css).await;
        found
            .unwrap_or_else(|e| panic!("find `{css}`: {e}"))
            .unwrap_or_else(|| panic!("no descendant matches `{css}`"))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.session.find_all_in(&self.path(""), css).await;
        found.unwrap_or_else(|e| panic!("find_all `{css}`: {e}"))
    }
}

/// Binds 127.0.0.1:0 to let the OS pick a free port, then releases it for chromedriver.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A fresh directory for the Chromium profile and the chromedriver log (the time only makes
/// the name unique).
#[allow(clippy::disallowed_methods)]
fn unique_temp_dir() -> Result<PathBuf, String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "orgkeeper-browser-{}-{nanos}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// `$CARGO_TARGET_DIR/browser-screenshots`, else `<crate>/target/browser-screenshots`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("browser-screenshots")
}

/// `DELETE /session/{id}` over a blocking socket, bounded by short timeouts.
fn delete_session_blocking(port: u16, session_id: &str) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    // Wait for the whole response (the reply comes once Chromium has quit). chromedriver keeps
    // the connection open despite `Connection: close`, so read by Content-Length, not to EOF.
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if response.len() >= end + 4 + length {
                return;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
}
