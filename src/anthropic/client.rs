//! The HTTP client: headers, timeouts, retries, logging, and one method per Admin API call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LOCATION};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use super::error::{ApiError, ApiErrorKind};
use super::models::*;
use super::pagination::{
    collect_id_pages, collect_report_pages, each_report_page, Page, PageParams, ReportPage,
};
use super::secret::AdminKey;

/// The API version every request pins (see admin-api.md §10).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Sent on every request, as Anthropic asks integrations to identify themselves.
pub const USER_AGENT: &str = concat!(
    "Orgkeeper/",
    env!("CARGO_PKG_VERSION"),
    " (+self-hosted admin dashboard)"
);

/// Beta header needed when the usage report is grouped or filtered by `speed`.
const FAST_MODE_BETA: &str = "fast-mode-2026-02-01";

tokio::task_local! {
    /// The end of the page view or action being served, and its length: every Admin API
    /// call it makes shares this one deadline (see [`within`]).
    static SCOPE_DEADLINE: (tokio::time::Instant, Duration);
}

/// Runs `work` — one page view or one action — with one deadline for every Admin API call it
/// makes, retries and re-reads included: each call ends at its own deadline or this one,
/// whichever comes first, and a call that starts after it fails at once. Without it (jobs),
/// each call has only its own.
pub async fn within<F: std::future::Future>(limit: Duration, work: F) -> F::Output {
    SCOPE_DEADLINE
        .scope((tokio::time::Instant::now() + limit, limit), work)
        .await
}

/// The end of the page view or action being served ([`within`]), if this runs in one: what
/// else it waits for (another sync of the same store) must end by then too.
pub fn scope_deadline() -> Option<tokio::time::Instant> {
    SCOPE_DEADLINE.try_with(|scope| scope.0).ok()
}

/// How the client talks to the Admin API.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `https://api.anthropic.com`, or a simulator's address. Paths are appended to it.
    pub base_url: String,
    pub key: AdminKey,
    /// Limit for establishing the TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Limit for one whole attempt (connect, send, and read the full answer).
    pub request_timeout: Duration,
    /// Limit for one logical call, retries and their waits included: a page never waits longer
    /// for the Admin API. A `retry-after` that does not fit in what is left ends the call with
    /// the 429 instead of a sleep. See [`Client::with_deadline`] for longer background work.
    pub deadline: Duration,
    /// Extra attempts after the first for requests that are safe to repeat (see [`Repeat`]).
    pub max_retries: u32,
    /// Delay before the first retry when the server gives no `retry-after`; doubled per retry,
    /// with up to 25 % random jitter taken off.
    pub base_backoff: Duration,
    /// Upper bound of the exponential delay.
    pub max_backoff: Duration,
    /// The longest `retry-after` the client waits out before trying again (and never longer
    /// than `request_timeout`, nor than what is left of the deadline). A server that asks for
    /// longer gets no retry: the call ends with its 429, which says how long it asked for.
    pub max_retry_after: Duration,
    /// `limit` used by the `list_all_*` helpers for ID-cursor lists (1..=1000). The maximum by
    /// default: every page is a round trip, and lists are read whole.
    pub page_size: u32,
    /// How many pages a `list_all_*` helper fetches at most before giving up with
    /// [`ApiErrorKind::PaginationLimit`] (1,000 pages of 1,000: a million objects).
    pub max_pages: u32,
    /// The same for reports and page-cursor lists (usage, cost, limits), whose longest
    /// legitimate reading is a few dozen pages: beyond this the upstream is looping.
    pub max_report_pages: u32,
}

impl ClientConfig {
    /// Defaults: connect 5 s, request 30 s, deadline 15 s, 2 retries, backoff 0.5 s doubling up
    /// to 8 s, a `retry-after` waited out up to 60 s (so, with the request timeout, 30 s),
    /// 1000 items per page, at most 1000 pages of a list
    /// and 200 of a report.
    pub fn new(base_url: impl Into<String>, key: AdminKey) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            key,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(15),
            max_retries: 2,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            page_size: 1000,
            max_pages: 1000,
            max_report_pages: 200,
        }
    }
}

/// Which of Anthropic's request budgets an answer spoke of: the Admin API's
/// (`/v1/organizations/…`) or the Compliance API's (`/v1/compliance/…`, 600 a minute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    Admin,
    Compliance,
}

/// A request budget as the last answer that announced it said
/// (`anthropic-ratelimit-requests-limit`, `-remaining`, `-reset`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// Requests allowed in the window.
    pub limit: u64,
    /// Requests left in it when the answer was sent.
    pub remaining: u64,
    /// When the window ends (absent if the header was missing or not RFC 3339).
    pub reset: Option<DateTime<Utc>>,
}

impl RateLimitStatus {
    /// The three headers, if the answer carries at least the limit and what remains of it.
    fn from_headers(headers: &HeaderMap) -> Option<RateLimitStatus> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let number = |name: &str| get(name).and_then(|v| v.trim().parse::<u64>().ok());
        Some(RateLimitStatus {
            limit: number("anthropic-ratelimit-requests-limit")?,
            remaining: number("anthropic-ratelimit-requests-remaining")?,
            reset: get("anthropic-ratelimit-requests-reset")
                .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok())
                .map(|t| t.with_timezone(&Utc)),
        })
    }
}

/// Whether a request may be sent again after a transient failure.
///
/// THE RETRY RULE — decided here and only here:
///
/// * Transient failures are HTTP 429, any 5xx (including 529 overloaded) and failures to
///   connect. A whole-request timeout is *not* retried (the caller has already waited long
///   enough, and for a change we cannot know whether it was applied).
/// * [`Repeat::Safe`]: reads (every GET) and updates that *set* a value, so that applying them
///   twice is the same as once: user role update, API key update, workspace update, workspace
///   member role update, workspace archive. These are retried up to `max_retries` times with
///   exponential backoff and jitter, honouring `retry-after` when the server sends one and it
///   is no longer than the client waits (see [`ClientConfig::max_retry_after`]).
/// * [`Repeat::Never`]: requests that create or remove something: invite creation and deletion,
///   workspace creation, workspace member add and remove, user removal. Repeating them could
///   create a duplicate or report a spurious "not found"; they are sent exactly once and the
///   error is returned to the administrator, who can check and try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    Safe,
    Never,
}

/// Typed client for the Anthropic Admin API. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    config: ClientConfig,
    /// The last rate-limit headers seen, per budget ([`Budget`] order); shared by the
    /// clients [`Client::with_deadline`] makes, which share the connections too.
    budgets: Arc<std::sync::Mutex<[Option<RateLimitStatus>; 2]>>,
    /// Requests sent, attempts included (see [`Client::counting`]).
    sent: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("key", &self.inner.config.key)
            .finish()
    }
}

/// Query string under construction. Array parameters are bracket-encoded and repeated
/// (`group_by[]=model&group_by[]=workspace_id`); values are form-encoded.
#[derive(Default)]
struct Query(Vec<(&'static str, String)>);

impl Query {
    fn push(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.0.push((key, value.into()));
        self
    }

    fn opt<V: ToString>(&mut self, key: &'static str, value: Option<V>) -> &mut Self {
        if let Some(v) = value {
            self.0.push((key, v.to_string()));
        }
        self
    }

    /// `key` must already end in `[]`.
    fn list<V: AsRef<str>>(&mut self, key: &'static str, values: &[V]) -> &mut Self {
        debug_assert!(key.ends_with("[]"));
        for v in values {
            self.0.push((key, v.as_ref().to_owned()));
        }
        self
    }

    fn flag(&mut self, key: &'static str, on: bool) -> &mut Self {
        if on {
            self.0.push((key, "true".to_owned()));
        }
        self
    }

    fn page(&mut self, p: &PageParams) -> &mut Self {
        self.opt("limit", p.limit)
            .opt("before_id", p.before_id.as_deref())
            .opt("after_id", p.after_id.as_deref())
    }

    fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| {
                let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
                format!("{k}={v}")
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn as_strs<T: AsRef<str>>(v: &[T]) -> Vec<&str> {
    v.iter().map(AsRef::as_ref).collect()
}

impl AsRef<str> for OrgRole {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}
impl AsRef<str> for InviteStatus {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}
impl AsRef<str> for UsageGroupBy {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}
impl AsRef<str> for CostGroupBy {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Client {
    /// Builds the client. Fails with [`ApiErrorKind::Config`] for an unusable base URL or a key
    /// that cannot be sent as a header. Does not contact the server.
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        let base = Url::parse(config.base_url.trim()).map_err(|e| {
            ApiError::new(
                ApiErrorKind::Config,
                format!("invalid Admin API base URL {:?}: {e}", config.base_url),
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ApiError::new(
                ApiErrorKind::Config,
                format!(
                    "the Admin API base URL must be an http(s) URL, got {:?}",
                    config.base_url
                ),
            ));
        }
        if !config.key.looks_like_admin_key() {
            tracing::warn!("the configured key does not start with sk-ant-admin; the Admin API will likely refuse it");
        }
        let mut key_header = HeaderValue::from_str(config.key.expose_secret()).map_err(|_| {
            ApiError::new(
                ApiErrorKind::Config,
                "the admin key contains characters that cannot be sent in an HTTP header",
            )
        })?;
        key_header.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key_header);
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Never follow a redirect: reqwest drops `Authorization` on a cross-host hop but
            // keeps `x-api-key`, so following would hand the admin key to whatever host the
            // answer names. A 3xx is reported as a configuration problem instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                ApiError::new(
                    ApiErrorKind::Config,
                    format!("could not build the HTTP client: {}", error_chain(&e)),
                )
            })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                config,
                budgets: Arc::default(),
                sent: Arc::default(),
            }),
        })
    }

    /// The same client (connection pool included) with another per-call deadline, e.g. a longer
    /// one for background jobs, which nobody is waiting on.
    pub fn with_deadline(&self, deadline: Duration) -> Client {
        let mut config = self.inner.config.clone();
        config.deadline = deadline;
        Client {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base: self.inner.base.clone(),
                config,
                budgets: self.inner.budgets.clone(),
                sent: self.inner.sent.clone(),
            }),
        }
    }

    /// The same client with its own count of requests sent ([`Client::sent`]): for work
    /// that is paced by the calls it makes.
    pub fn counting(&self) -> Client {
        Client {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base: self.inner.base.clone(),
                config: self.inner.config.clone(),
                budgets: self.inner.budgets.clone(),
                sent: Arc::default(),
            }),
        }
    }

    /// Requests this client (and the clients made from it by [`Client::with_deadline`]) sent,
    /// retries included.
    pub fn sent(&self) -> u64 {
        self.inner.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Objects asked for per page of an ID-cursor list.
    pub fn page_size(&self) -> u32 {
        self.inner.config.page_size.clamp(1, 1000)
    }

    /// What the last answer that carried `anthropic-ratelimit-requests-*` headers said of
    /// `budget` (`None` until one did: the Admin API need not send them).
    pub fn rate_limit(&self, budget: Budget) -> Option<RateLimitStatus> {
        self.inner.budgets.lock().unwrap_or_else(|e| e.into_inner())[budget as usize].clone()
    }

    /// The per-call deadline.
    pub fn deadline(&self) -> Duration {
        self.inner.config.deadline
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    fn url(&self, root: &[&str], segments: &[&str], query: &Query) -> Url {
        let mut url = self.inner.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("base URL was checked to be a base in Client::new");
            path.pop_if_empty().extend(root);
            path.extend(segments);
        }
        if !query.0.is_empty() {
            url.set_query(Some(&query.encode()));
        }
        url
    }

    fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let cfg = &self.inner.config;
        if let Some(ra) = retry_after {
            return ra.min(cfg.max_retry_after);
        }
        let exp = cfg
            .base_backoff
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(cfg.max_backoff);
        let jitter: f64 = rand::thread_rng().gen_range(0.0..0.25);
        exp.mul_f64(1.0 - jitter)
    }

    /// Sends one logical request under `/v1/organizations/`, retrying per [`Repeat`], and
    /// decodes the JSON answer.
    async fn call<T, B>(
        &self,
        method: Method,
        segments: &[&str],
        query: &Query,
        body: Option<&B>,
        repeat: Repeat,
        beta: Option<&'static str>,
    ) -> Result<T, ApiError>
    where
        T: DeserializeOwned,
        B: Serialize + ?Sized,
    {
        self.call_at(
            &["v1", "organizations"],
            method,
            segments,
            query,
            body,
            repeat,
            beta,
        )
        .await
    }

    /// [`Client::call`] under another root (`/v1/compliance/` for the Activity Feed).
    ///
    /// The client boundary: a successful body has the admin key taken out before it is
    /// parsed, and every error leaves through [`ApiError::scrubbed`], so no string from the
    /// upstream (message, request id, type, code, names) reaches a page, a log or the audit
    /// log with the key in it.
    #[allow(clippy::too_many_arguments)]
    async fn call_at<T, B>(
        &self,
        root: &[&str],
        method: Method,
        segments: &[&str],
        query: &Query,
        body: Option<&B>,
        repeat: Repeat,
        beta: Option<&'static str>,
    ) -> Result<T, ApiError>
    where
        T: DeserializeOwned,
        B: Serialize + ?Sized,
    {
        let read = method == Method::GET;
        self.send(root, method, segments, query, body, repeat, beta)
            .await
            .map_err(|error| {
                error
                    .scrubbed(self.inner.config.key.expose_secret())
                    .during_read(read)
            })
    }

    #[allow(clippy::too_many_arguments)]
    async fn send<T, B>(
        &self,
        root: &[&str],
        method: Method,
        segments: &[&str],
        query: &Query,
        body: Option<&B>,
        repeat: Repeat,
        beta: Option<&'static str>,
    ) -> Result<T, ApiError>
    where
        T: DeserializeOwned,
        B: Serialize + ?Sized,
    {
        let url = self.url(root, segments, query);
        let path = url.path().to_owned();
        let body = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| {
                ApiError::new(
                    ApiErrorKind::Config,
                    format!("could not encode the request: {e}"),
                )
            })?),
            None => None,
        };
        let secret = self.inner.config.key.expose_secret();
        let max_retries = self.inner.config.max_retries;
        let own = (
            tokio::time::Instant::now() + self.inner.config.deadline,
            self.inner.config.deadline,
        );
        // The page's or action's deadline when it comes first; the message then names the
        // page's whole wait, which is what the person experienced.
        let (deadline, limit) = SCOPE_DEADLINE
            .try_with(|scope| *scope)
            .map_or(own, |scope| if scope.0 < own.0 { scope } else { own });
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                ApiErrorKind::Timeout,
                format!(
                    "the Admin API did not answer within {} ({method} {path} was not sent)",
                    super::error::seconds(limit)
                ),
            )
            .with_gave_up_after(limit));
        }
        let late = |request_id: Option<String>| {
            ApiError::new(
                ApiErrorKind::Timeout,
                format!(
                    "the Admin API did not answer within {} ({method} {path})",
                    super::error::seconds(limit)
                ),
            )
            .with_gave_up_after(limit)
            .with_request_id(request_id)
        };
        let mut retry = 0u32;
        loop {
            let started = Instant::now();
            self.inner
                .sent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut req = self.inner.http.request(method.clone(), url.clone());
            if let Some(b) = &body {
                req = req.header(CONTENT_TYPE, "application/json").body(b.clone());
            }
            if let Some(beta) = beta {
                req = req.header("anthropic-beta", beta);
            }
            let Ok(sent) = tokio::time::timeout_at(deadline, req.send()).await else {
                return Err(late(None));
            };
            let outcome = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let request_id = resp
                        .headers()
                        .get("request-id")
                        .and_then(|v| v.to_str().ok())
                        .and_then(super::error::request_id_shaped);
                    if resp.status().is_redirection() {
                        let location = resp
                            .headers()
                            .get(LOCATION)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("an address it did not give")
                            .to_owned();
                        return Err(ApiError::new(
                            ApiErrorKind::Config,
                            format!(
                                "the Admin API address answered with a redirect to {location}; \
                                 check ORGKEEPER_API_BASE_URL"
                            ),
                        )
                        .with_status(status)
                        .with_request_id(request_id));
                    }
                    let retry_after = parse_retry_after(resp.headers());
                    if let Some(status) = RateLimitStatus::from_headers(resp.headers()) {
                        let budget =
                            if root.first() == Some(&"v1") && root.get(1) == Some(&"compliance") {
                                Budget::Compliance
                            } else {
                                Budget::Admin
                            };
                        self.inner.budgets.lock().unwrap_or_else(|e| e.into_inner())
                            [budget as usize] = Some(status);
                    }
                    let Ok(read) = tokio::time::timeout_at(deadline, resp.bytes()).await else {
                        return Err(late(request_id));
                    };
                    tracing::debug!(
                        method = %method,
                        path = %path,
                        status,
                        request_id = request_id.as_deref().unwrap_or("-"),
                        duration_ms = started.elapsed().as_millis() as u64,
                        attempt = retry + 1,
                        "Admin API call"
                    );
                    match read {
                        Ok(bytes) if (200..300).contains(&status) => {
                            let bytes = super::error::redact_body(bytes, secret);
                            return serde_json::from_slice::<T>(&bytes).map_err(|e| {
                                ApiError::new(
                                    ApiErrorKind::MalformedResponse,
                                    format!("unexpected answer to {method} {path}: {e}"),
                                )
                                .with_status(status)
                                .with_request_id(request_id)
                            });
                        }
                        Ok(bytes) => {
                            let err =
                                ApiError::from_response(status, request_id, &bytes, retry_after);
                            let transient = status == 429 || (500..600).contains(&status);
                            (err, transient, retry_after)
                        }
                        Err(e) => {
                            let err = from_reqwest(&e, &method, &path)
                                .with_status(status)
                                .with_request_id(request_id);
                            (err, false, None)
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(
                        method = %method,
                        path = %path,
                        error = %error_chain(&e),
                        duration_ms = started.elapsed().as_millis() as u64,
                        attempt = retry + 1,
                        "Admin API call failed"
                    );
                    // A failure to connect means nothing reached the server.
                    let transient = e.is_connect();
                    (from_reqwest(&e, &method, &path), transient, None)
                }
            };
            let (err, transient, retry_after) = outcome;
            if repeat == Repeat::Safe && transient && retry < max_retries {
                let delay = self.backoff(retry, retry_after);
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                // A wait that does not fit in the deadline is not started, nor one longer than
                // the client ever waits for an answer (`max_retry_after`, `request_timeout`):
                // waiting less than the server asked would only be refused again. The error
                // says how long the server asked for and carries the request id (see
                // ApiError::user_message).
                let longest = self
                    .inner
                    .config
                    .max_retry_after
                    .min(self.inner.config.request_timeout);
                if retry_after.is_some_and(|asked| asked > left || asked > longest) || delay >= left
                {
                    tracing::debug!(
                        method = %method,
                        path = %path,
                        delay_ms = delay.as_millis() as u64,
                        left_ms = left.as_millis() as u64,
                        error = %err,
                        "not retrying Admin API call: the wait does not fit in the deadline"
                    );
                    return Err(err);
                }
                tracing::debug!(
                    method = %method,
                    path = %path,
                    delay_ms = delay.as_millis() as u64,
                    error = %err,
                    "retrying Admin API call"
                );
                tokio::time::sleep(delay).await;
                retry += 1;
                continue;
            }
            return Err(err);
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &Query,
    ) -> Result<T, ApiError> {
        self.call::<T, ()>(Method::GET, segments, query, None, Repeat::Safe, None)
            .await
    }

    async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        segments: &[&str],
        body: &B,
        repeat: Repeat,
    ) -> Result<T, ApiError> {
        self.call(
            Method::POST,
            segments,
            &Query::default(),
            Some(body),
            repeat,
            None,
        )
        .await
    }

    async fn delete<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ApiError> {
        self.call::<T, ()>(
            Method::DELETE,
            segments,
            &Query::default(),
            None,
            Repeat::Never,
            None,
        )
        .await
    }

    fn max_pages(&self) -> u32 {
        self.inner.config.max_pages
    }

    fn max_report_pages(&self) -> u32 {
        self.inner.config.max_report_pages
    }

    fn all_pages(&self) -> PageParams {
        PageParams::first(self.inner.config.page_size.clamp(1, 1000))
    }

    // ---------------------------------------------------------------------------------------
    // Organization

    /// `GET /v1/organizations/me`.
    pub async fn get_organization(&self) -> Result<Organization, ApiError> {
        self.get(&["me"], &Query::default()).await
    }

    // ---------------------------------------------------------------------------------------
    // Users

    fn user_query(filter: &UserFilter, page: &PageParams) -> Query {
        let mut q = Query::default();
        q.page(page)
            .opt("email", filter.email.as_deref())
            .list("roles[]", &as_strs(&filter.roles));
        q
    }

    /// One page of `GET /v1/organizations/users`.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        page: &PageParams,
    ) -> Result<Page<User>, ApiError> {
        self.get(&["users"], &Self::user_query(filter, page)).await
    }

    /// Every user matching `filter`, following pagination to the end.
    pub async fn list_all_users(&self, filter: &UserFilter) -> Result<Vec<User>, ApiError> {
        self.every(|page| async move { self.list_users(filter, &page).await })
            .await
    }

    /// `GET /v1/organizations/users/{user_id}`.
    pub async fn get_user(&self, user_id: &str) -> Result<User, ApiError> {
        self.get(&["users", user_id], &Query::default()).await
    }

    /// `POST /v1/organizations/users/{user_id}` `{role}`. Retried (it sets a value).
    pub async fn update_user_role(&self, user_id: &str, role: OrgRole) -> Result<User, ApiError> {
        self.post(&["users", user_id], &UpdateUser { role }, Repeat::Safe)
            .await
    }

    /// `DELETE /v1/organizations/users/{user_id}`. Never retried.
    pub async fn remove_user(&self, user_id: &str) -> Result<UserDeleted, ApiError> {
        self.delete(&["users", user_id]).await
    }

    // ---------------------------------------------------------------------------------------
    // Invites

    fn invite_query(filter: &InviteFilter, page: &PageParams) -> Query {
        let mut q = Query::default();
        q.page(page)
            .opt("email", filter.email.as_deref())
            .list("roles[]", &as_strs(&filter.roles))
            .list("statuses[]", &as_strs(&filter.statuses));
        q
    }

    /// One page of `GET /v1/organizations/invites`.
    pub async fn list_invites(
        &self,
        filter: &InviteFilter,
        page: &PageParams,
    ) -> Result<Page<Invite>, ApiError> {
        self.get(&["invites"], &Self::invite_query(filter, page))
            .await
    }

    /// Every invite matching `filter`.
    pub async fn list_all_invites(&self, filter: &InviteFilter) -> Result<Vec<Invite>, ApiError> {
        self.every(|page| async move { self.list_invites(filter, &page).await })
            .await
    }

    /// `GET /v1/organizations/invites/{invite_id}`.
    pub async fn get_invite(&self, invite_id: &str) -> Result<Invite, ApiError> {
        self.get(&["invites", invite_id], &Query::default()).await
    }

    /// `POST /v1/organizations/invites`. Never retried (it would send a second invite).
    pub async fn create_invite(&self, invite: &CreateInvite) -> Result<Invite, ApiError> {
        self.post(&["invites"], invite, Repeat::Never).await
    }

    /// `DELETE /v1/organizations/invites/{invite_id}`. Never retried.
    pub async fn delete_invite(&self, invite_id: &str) -> Result<InviteDeleted, ApiError> {
        self.delete(&["invites", invite_id]).await
    }

    // ---------------------------------------------------------------------------------------
    // Workspaces

    fn workspace_query(filter: &WorkspaceFilter, page: &PageParams) -> Query {
        let mut q = Query::default();
        q.page(page)
            .flag("include_archived", filter.include_archived)
            .flag("include_default", filter.include_default);
        q
    }

    /// One page of `GET /v1/organizations/workspaces`.
    pub async fn list_workspaces(
        &self,
        filter: &WorkspaceFilter,
        page: &PageParams,
    ) -> Result<Page<Workspace>, ApiError> {
        self.get(&["workspaces"], &Self::workspace_query(filter, page))
            .await
    }

    /// Every workspace matching `filter`.
    pub async fn list_all_workspaces(
        &self,
        filter: &WorkspaceFilter,
    ) -> Result<Vec<Workspace>, ApiError> {
        self.every(|page| async move { self.list_workspaces(filter, &page).await })
            .await
    }

    /// `GET /v1/organizations/workspaces/{workspace_id}`.
    pub async fn get_workspace(&self, workspace_id: &str) -> Result<Workspace, ApiError> {
        self.get(&["workspaces", workspace_id], &Query::default())
            .await
    }

    /// `POST /v1/organizations/workspaces`. Never retried (it could create two).
    pub async fn create_workspace(
        &self,
        name: &str,
        display_color: Option<&str>,
    ) -> Result<Workspace, ApiError> {
        let body = CreateWorkspace {
            name: name.to_owned(),
            display_color: display_color.map(str::to_owned),
        };
        self.post(&["workspaces"], &body, Repeat::Never).await
    }

    /// `POST /v1/organizations/workspaces/{workspace_id}`; `None` fields stay unchanged.
    /// Retried (it sets values).
    pub async fn update_workspace(
        &self,
        workspace_id: &str,
        name: Option<&str>,
        display_color: Option<&str>,
    ) -> Result<Workspace, ApiError> {
        let body = UpdateWorkspace {
            name: name.map(str::to_owned),
            display_color: display_color.map(str::to_owned),
        };
        self.post(&["workspaces", workspace_id], &body, Repeat::Safe)
            .await
    }

    /// `POST /v1/organizations/workspaces/{workspace_id}/archive`. Retried (archiving twice
    /// leaves it archived).
    pub async fn archive_workspace(&self, workspace_id: &str) -> Result<Workspace, ApiError> {
        self.post(
            &["workspaces", workspace_id, "archive"],
            &serde_json::json!({}),
            Repeat::Safe,
        )
        .await
    }

    // ---------------------------------------------------------------------------------------
    // Workspace members

    /// One page of `GET /v1/organizations/workspaces/{workspace_id}/members`.
    pub async fn list_workspace_members(
        &self,
        workspace_id: &str,
        page: &PageParams,
    ) -> Result<Page<WorkspaceMember>, ApiError> {
        let mut q = Query::default();
        q.page(page);
        self.get(&["workspaces", workspace_id, "members"], &q).await
    }

    /// Every member of the workspace.
    pub async fn list_all_workspace_members(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<WorkspaceMember>, ApiError> {
        self.every(|page| async move { self.list_workspace_members(workspace_id, &page).await })
            .await
    }

    /// `GET /v1/organizations/workspaces/{workspace_id}/members/{user_id}`.
    pub async fn get_workspace_member(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<WorkspaceMember, ApiError> {
        self.get(
            &["workspaces", workspace_id, "members", user_id],
            &Query::default(),
        )
        .await
    }

    /// `POST /v1/organizations/workspaces/{workspace_id}/members`. Never retried.
    pub async fn add_workspace_member(
        &self,
        workspace_id: &str,
        user_id: &str,
        workspace_role: WorkspaceRole,
    ) -> Result<WorkspaceMember, ApiError> {
        let body = AddWorkspaceMember {
            user_id: user_id.to_owned(),
            workspace_role,
        };
        self.post(
            &["workspaces", workspace_id, "members"],
            &body,
            Repeat::Never,
        )
        .await
    }

    /// `POST /v1/organizations/workspaces/{workspace_id}/members/{user_id}`. Retried (it sets
    /// a value).
    pub async fn update_workspace_member(
        &self,
        workspace_id: &str,
        user_id: &str,
        workspace_role: WorkspaceRole,
    ) -> Result<WorkspaceMember, ApiError> {
        self.post(
            &["workspaces", workspace_id, "members", user_id],
            &UpdateWorkspaceMember { workspace_role },
            Repeat::Safe,
        )
        .await
    }

    /// `DELETE /v1/organizations/workspaces/{workspace_id}/members/{user_id}`. Never retried.
    pub async fn remove_workspace_member(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<WorkspaceMemberDeleted, ApiError> {
        self.delete(&["workspaces", workspace_id, "members", user_id])
            .await
    }

    // ---------------------------------------------------------------------------------------
    // API keys

    fn api_key_query(filter: &ApiKeyFilter, page: &PageParams) -> Query {
        let mut q = Query::default();
        q.page(page)
            .opt("status", filter.status.as_ref().map(ApiKeyStatus::as_str))
            .opt("workspace_id", filter.workspace_id.as_deref())
            .opt("created_by_user_id", filter.created_by_user_id.as_deref());
        q
    }

    /// One page of `GET /v1/organizations/api_keys`.
    pub async fn list_api_keys(
        &self,
        filter: &ApiKeyFilter,
        page: &PageParams,
    ) -> Result<Page<ApiKey>, ApiError> {
        self.get(&["api_keys"], &Self::api_key_query(filter, page))
            .await
    }

    /// Every API key matching `filter`.
    pub async fn list_all_api_keys(&self, filter: &ApiKeyFilter) -> Result<Vec<ApiKey>, ApiError> {
        self.every(|page| async move { self.list_api_keys(filter, &page).await })
            .await
    }

    /// `GET /v1/organizations/api_keys/{api_key_id}`.
    pub async fn get_api_key(&self, api_key_id: &str) -> Result<ApiKey, ApiError> {
        self.get(&["api_keys", api_key_id], &Query::default()).await
    }

    /// `POST /v1/organizations/api_keys/{api_key_id}` with a new name and/or status. Retried
    /// (it sets values).
    pub async fn update_api_key(
        &self,
        api_key_id: &str,
        update: &UpdateApiKey,
    ) -> Result<ApiKey, ApiError> {
        self.post(&["api_keys", api_key_id], update, Repeat::Safe)
            .await
    }

    // ---------------------------------------------------------------------------------------
    // Messages usage report

    fn usage_query(p: &UsageReportParams, page: Option<&str>) -> (Query, Option<&'static str>) {
        let mut q = Query::default();
        q.push("starting_at", rfc3339(&p.starting_at))
            .opt("ending_at", p.ending_at.as_ref().map(rfc3339))
            .opt(
                "bucket_width",
                p.bucket_width.as_ref().map(BucketWidth::as_str),
            )
            .opt("limit", p.limit)
            .opt("page", page)
            .list("group_by[]", &as_strs(&p.group_by))
            .list("models[]", &p.models)
            .list("api_key_ids[]", &p.api_key_ids)
            .list("workspace_ids[]", &p.workspace_ids)
            .list("service_tiers[]", &p.service_tiers)
            .list("context_window[]", &p.context_window)
            .list("inference_geos[]", &p.inference_geos)
            .list("speeds[]", &p.speeds)
            .list("account_ids[]", &p.account_ids)
            .list("service_account_ids[]", &p.service_account_ids);
        let beta = (p.group_by.contains(&UsageGroupBy::Speed) || !p.speeds.is_empty())
            .then_some(FAST_MODE_BETA);
        (q, beta)
    }

    /// One page of `GET /v1/organizations/usage_report/messages` (uses `params.page`).
    pub async fn usage_report(
        &self,
        params: &UsageReportParams,
    ) -> Result<ReportPage<UsageBucket>, ApiError> {
        self.usage_page(params, params.page.as_deref()).await
    }

    async fn usage_page(
        &self,
        params: &UsageReportParams,
        page: Option<&str>,
    ) -> Result<ReportPage<UsageBucket>, ApiError> {
        let (q, beta) = Self::usage_query(params, page);
        self.call::<_, ()>(
            Method::GET,
            &["usage_report", "messages"],
            &q,
            None,
            Repeat::Safe,
            beta,
        )
        .await
    }

    // ---------------------------------------------------------------------------------------
    // Cost report

    async fn cost_page(
        &self,
        p: &CostReportParams,
        page: Option<&str>,
    ) -> Result<ReportPage<CostBucket>, ApiError> {
        let mut q = Query::default();
        q.push("starting_at", rfc3339(&p.starting_at))
            .opt("ending_at", p.ending_at.as_ref().map(rfc3339))
            .opt(
                "bucket_width",
                p.bucket_width.as_ref().map(BucketWidth::as_str),
            )
            .list("group_by[]", &as_strs(&p.group_by))
            .opt("limit", p.limit)
            .opt("page", page);
        self.get(&["cost_report"], &q).await
    }

    /// One page of `GET /v1/organizations/cost_report` (uses `params.page`).
    pub async fn cost_report(
        &self,
        params: &CostReportParams,
    ) -> Result<ReportPage<CostBucket>, ApiError> {
        self.cost_page(params, params.page.as_deref()).await
    }

    // ---------------------------------------------------------------------------------------
    // Claude Code usage report

    async fn claude_code_page(
        &self,
        p: &ClaudeCodeUsageParams,
        page: Option<&str>,
    ) -> Result<ReportPage<ClaudeCodeRecord>, ApiError> {
        let mut q = Query::default();
        q.push("starting_at", p.starting_at.format("%Y-%m-%d").to_string())
            .opt("limit", p.limit)
            .opt("page", page);
        self.get(&["usage_report", "claude_code"], &q).await
    }

    /// One page of `GET /v1/organizations/usage_report/claude_code` (uses `params.page`).
    pub async fn claude_code_usage(
        &self,
        params: &ClaudeCodeUsageParams,
    ) -> Result<ReportPage<ClaudeCodeRecord>, ApiError> {
        self.claude_code_page(params, params.page.as_deref()).await
    }

    // ---------------------------------------------------------------------------------------
    // Rate limits (read-only)

    async fn org_rate_limit_page(
        &self,
        p: &OrgRateLimitParams,
        page: Option<&str>,
    ) -> Result<ReportPage<OrgRateLimit>, ApiError> {
        let mut q = Query::default();
        q.opt("group_type", p.group_type.as_deref())
            .opt("model", p.model.as_deref())
            .opt("limit", p.limit)
            .opt("page", page);
        self.get(&["rate_limits"], &q).await
    }

    /// One page of `GET /v1/organizations/rate_limits` (uses `params.page`; without
    /// `params.limit` the API returns everything at once).
    pub async fn list_org_rate_limits(
        &self,
        params: &OrgRateLimitParams,
    ) -> Result<ReportPage<OrgRateLimit>, ApiError> {
        self.org_rate_limit_page(params, params.page.as_deref())
            .await
    }

    async fn workspace_rate_limit_page(
        &self,
        workspace_id: &str,
        p: &WorkspaceRateLimitParams,
        page: Option<&str>,
    ) -> Result<ReportPage<WorkspaceRateLimit>, ApiError> {
        let mut q = Query::default();
        q.opt("group_type", p.group_type.as_deref())
            .flag("include_inherited", p.include_inherited)
            .opt("limit", p.limit)
            .opt("page", page);
        self.get(&["workspaces", workspace_id, "rate_limits"], &q)
            .await
    }

    /// One page of `GET /v1/organizations/workspaces/{workspace_id}/rate_limits`.
    pub async fn list_workspace_rate_limits(
        &self,
        workspace_id: &str,
        params: &WorkspaceRateLimitParams,
    ) -> Result<ReportPage<WorkspaceRateLimit>, ApiError> {
        self.workspace_rate_limit_page(workspace_id, params, params.page.as_deref())
            .await
    }

    /// `POST /v1/organizations/workspaces/{workspace_id}/rate_limits/{rate_limit_id}`: sets or
    /// clears workspace overrides. Retried (it sets values).
    pub async fn update_workspace_rate_limit(
        &self,
        workspace_id: &str,
        rate_limit_id: &str,
        update: &UpdateWorkspaceRateLimit,
    ) -> Result<WorkspaceRateLimit, ApiError> {
        self.post(
            &["workspaces", workspace_id, "rate_limits", rate_limit_id],
            update,
            Repeat::Safe,
        )
        .await
    }

    // Spend limits (§8.1)

    /// Every spend limit matching `filter` (`GET /v1/organizations/spend_limits`, which needs
    /// the `spend-limit-reads` beta header).
    pub async fn list_spend_limits(
        &self,
        filter: &SpendLimitFilter,
    ) -> Result<Vec<SpendLimit>, ApiError> {
        collect_report_pages(
            self.max_report_pages(),
            None,
            false,
            |page: Option<String>| async move {
                let mut q = Query::default();
                q.list("scope_type[]", &filter.scope_types)
                    .opt("workspace_id", filter.workspace_id.as_deref())
                    .push("limit", "100")
                    .opt("page", page.as_deref());
                self.call::<ReportPage<SpendLimit>, ()>(
                    Method::GET,
                    &["spend_limits"],
                    &q,
                    None,
                    Repeat::Safe,
                    Some(SPEND_LIMIT_READS_BETA),
                )
                .await
            },
        )
        .await
    }

    /// `POST /v1/organizations/spend_limits`: sets a limit (an upsert on scope and period, so
    /// retrying is safe).
    pub async fn set_spend_limit(&self, limit: &SetSpendLimit) -> Result<SpendLimit, ApiError> {
        self.post(&["spend_limits"], limit, Repeat::Safe).await
    }

    /// `DELETE /v1/organizations/spend_limits/{spend_limit_id}`.
    pub async fn delete_spend_limit(
        &self,
        spend_limit_id: &str,
    ) -> Result<SpendLimitDeleted, ApiError> {
        self.delete(&["spend_limits", spend_limit_id]).await
    }

    // Compliance API Activity Feed (§8.5)

    /// One page of `GET /v1/compliance/activities`. An admin key reads it only if it was
    /// created while the Compliance API was enabled; otherwise 403 `permission_error`.
    pub async fn list_activities(
        &self,
        params: &ActivityParams,
    ) -> Result<Page<Activity>, ApiError> {
        let mut q = Query::default();
        q.page(&params.page)
            .opt("order", params.order.map(ActivityOrder::as_str))
            .opt(
                "created_at.gte",
                params
                    .created_at_gte
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            )
            .list("activity_types[]", &params.activity_types);
        self.call_at::<Page<Activity>, ()>(
            &["v1", "compliance"],
            Method::GET,
            &["activities"],
            &q,
            None,
            Repeat::Safe,
            None,
        )
        .await
    }

    /// Every activity matching `params` from its cursor on, following pagination to the end.
    pub async fn list_all_activities(
        &self,
        params: &ActivityParams,
    ) -> Result<Vec<Activity>, ApiError> {
        collect_id_pages(self.max_pages(), |after: Option<String>| {
            let mut page = params.clone();
            if after.is_some() {
                page.page.after_id = after;
            }
            async move { self.list_activities(&page).await }
        })
        .await
    }

    // Usage and cost analytics (§8.6.1)

    fn analytics_query(p: &AnalyticsParams, page: Option<&str>) -> Query {
        let mut q = Query::default();
        q.push("starting_at", rfc3339(&p.starting_at))
            .opt("ending_at", p.ending_at.as_ref().map(rfc3339))
            .opt(
                "time_bucket_width",
                p.time_bucket_width.as_ref().map(BucketWidth::as_str),
            )
            .list("group_by[]", &as_strs(&p.group_by))
            .list("actor_ids[]", &p.actor_ids)
            .list("actor_types[]", &p.actor_types)
            .list("api_key_ids[]", &p.api_key_ids)
            .list("workspace_ids[]", &p.workspace_ids)
            .opt("limit", p.limit)
            .opt("page", page);
        q
    }

    async fn analytics_page<T: DeserializeOwned>(
        &self,
        report: &'static str,
        p: &AnalyticsParams,
        page: Option<&str>,
    ) -> Result<ReportPage<T>, ApiError> {
        self.call::<_, ()>(
            Method::GET,
            &["analytics", report],
            &Self::analytics_query(p, page),
            None,
            Repeat::Safe,
            Some(ANALYTICS_BETA),
        )
        .await
    }

    /// One page of `GET /v1/organizations/analytics/usage` (uses `params.page`).
    pub async fn analytics_usage(
        &self,
        params: &AnalyticsParams,
    ) -> Result<ReportPage<AnalyticsUsageRow>, ApiError> {
        self.analytics_page("usage", params, params.page.as_deref())
            .await
    }

    /// One page of `GET /v1/organizations/analytics/cost` (uses `params.page`).
    pub async fn analytics_cost(
        &self,
        params: &AnalyticsParams,
    ) -> Result<ReportPage<AnalyticsCostRow>, ApiError> {
        self.analytics_page("cost", params, params.page.as_deref())
            .await
    }

    // ---------------------------------------------------------------------------------------
    // Following a paged report

    /// Every item of an id-paged list (users, invites, workspaces, members, keys), following
    /// `after_id` from the first page to the last; `list` reads one page.
    async fn every<T, F>(&self, mut list: impl FnMut(PageParams) -> F) -> Result<Vec<T>, ApiError>
    where
        F: std::future::Future<Output = Result<Page<T>, ApiError>>,
    {
        let base = self.all_pages();
        collect_id_pages(self.max_pages(), |after_id: Option<String>| {
            list(PageParams {
                after_id,
                ..base.clone()
            })
        })
        .await
    }

    /// Every row of a paged report, from its own `page` (or the start) to the end.
    pub async fn all<R: Paged>(&self, report: &R) -> Result<Vec<R::Row>, ApiError> {
        collect_report_pages(
            self.max_report_pages(),
            report.start(),
            R::HAS_MORE,
            |page: Option<String>| async move { report.read(self, page.as_deref()).await },
        )
        .await
    }

    /// Every page of a report, handed to `take` one page at a time (a sync stages each page
    /// instead of holding the whole report).
    pub async fn pages<R: Paged, G, E>(
        &self,
        report: &R,
        take: impl FnMut(Vec<R::Row>) -> G,
    ) -> Result<(), E>
    where
        G: std::future::Future<Output = Result<(), E>>,
        E: From<ApiError>,
    {
        each_report_page(
            self.max_report_pages(),
            report.start(),
            R::HAS_MORE,
            |page: Option<String>| async move { report.read(self, page.as_deref()).await },
            take,
        )
        .await
    }
}

/// A paged report or list that [`Client::all`] and [`Client::pages`] follow page by page:
/// the usage, cost, Claude Code and analytics reports and the rate-limit lists alike.
pub trait Paged: Sync {
    type Row: Send;
    /// Whether `has_more` ends the walk (reports), or only a missing next-page token (the
    /// rate-limit lists, which leave `has_more` out).
    const HAS_MORE: bool = true;
    /// The page to start from: the query's own `page`.
    fn start(&self) -> Option<String>;
    /// Reads one page.
    fn read(
        &self,
        client: &Client,
        page: Option<&str>,
    ) -> impl std::future::Future<Output = Result<ReportPage<Self::Row>, ApiError>> + Send;
}

/// `/analytics/usage` of a query (the same query shape reads `/analytics/cost`).
pub struct UsageByActor<'a>(pub &'a AnalyticsParams);

/// `/analytics/cost` of a query.
pub struct CostByActor<'a>(pub &'a AnalyticsParams);

/// One [`Paged`] impl per line: query => row, whether `has_more` ends the walk, where the
/// query keeps its starting page, how one page is read.
macro_rules! paged {
    ($($query:ty => $row:ty, $has_more:expr, |$q:ident| $start:expr, |$c:ident, $p:ident| $read:expr;)*) => {$(
        impl Paged for $query {
            type Row = $row;
            const HAS_MORE: bool = $has_more;
            fn start(&self) -> Option<String> {
                let $q = self;
                $start.clone()
            }
            async fn read(&self, $c: &Client, $p: Option<&str>) -> Result<ReportPage<$row>, ApiError> {
                let $q = self;
                $read.await
            }
        }
    )*};
}

paged! {
    UsageReportParams => UsageBucket, true, |q| q.page, |c, p| c.usage_page(q, p);
    CostReportParams => CostBucket, true, |q| q.page, |c, p| c.cost_page(q, p);
    ClaudeCodeUsageParams => ClaudeCodeRecord, true, |q| q.page, |c, p| c.claude_code_page(q, p);
    OrgRateLimitParams => OrgRateLimit, false, |q| q.page, |c, p| c.org_rate_limit_page(q, p);
    // One workspace's: (workspace id, query).
    (&str, &WorkspaceRateLimitParams) => WorkspaceRateLimit, false, |q| q.1.page,
        |c, p| c.workspace_rate_limit_page(q.0, q.1, p);
    UsageByActor<'_> => AnalyticsUsageRow, true, |q| q.0.page, |c, p| c.analytics_page("usage", q.0, p);
    CostByActor<'_> => AnalyticsCostRow, true, |q| q.0.page, |c, p| c.analytics_page("cost", q.0, p);
}

/// The beta header the Usage and Cost Analytics API requires (§8.6.1).
pub const ANALYTICS_BETA: &str = "analytics-usage-cost-2026-08-24";

/// The beta the spend-limit list requires.
pub const SPEND_LIMIT_READS_BETA: &str = "spend-limit-reads-2026-09-26";

/// `retry-after` in seconds (integer or fractional). HTTP-date values are ignored (the
/// exponential backoff applies instead).
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// The error message of `e` and its sources, without the URL (which may carry filter values).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

fn from_reqwest(e: &reqwest::Error, method: &Method, path: &str) -> ApiError {
    let kind = if e.is_timeout() {
        ApiErrorKind::Timeout
    } else if e.is_decode() || e.is_body() {
        ApiErrorKind::MalformedResponse
    } else {
        ApiErrorKind::Transport
    };
    // `without_url` keeps query strings (emails, IDs) out of the message; the path is enough.
    let text = match kind {
        ApiErrorKind::Timeout => format!("{method} {path} timed out"),
        _ => format!("{method} {path}: {}", error_chain(e)),
    };
    let text = text.replace(e.url().map(Url::as_str).unwrap_or("\u{0}"), path);
    ApiError::new(kind, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new(ClientConfig::new(
            "http://127.0.0.1:9/prefix/",
            AdminKey::new("sk-ant-admin01-x".into()),
        ))
        .unwrap()
    }

    #[test]
    fn array_parameters_are_bracket_encoded_and_repeated() {
        let mut p = UsageReportParams::new("2025-08-01T00:00:00Z".parse().unwrap());
        p.group_by = vec![UsageGroupBy::Model, UsageGroupBy::WorkspaceId];
        p.models = vec!["claude a".into()];
        p.bucket_width = Some(BucketWidth::Hour);
        let (q, beta) = Client::usage_query(&p, Some("page_x="));
        let url = client().url(&["v1", "organizations"], &["usage_report", "messages"], &q);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/v1/organizations/usage_report/messages?\
             starting_at=2025-08-01T00%3A00%3A00Z&bucket_width=1h&page=page_x%3D&\
             group_by[]=model&group_by[]=workspace_id&models[]=claude+a"
        );
        assert_eq!(beta, None);
        p.group_by.push(UsageGroupBy::Speed);
        assert_eq!(Client::usage_query(&p, None).1, Some(FAST_MODE_BETA));
    }

    #[test]
    fn ids_are_percent_encoded_as_single_path_segments() {
        let url = client().url(
            &["v1", "organizations"],
            &["users", "../me?x=1"],
            &Query::default(),
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/v1/organizations/users/..%2Fme%3Fx=1"
        );
    }

    #[test]
    fn an_unusable_base_url_is_a_config_error_that_hides_the_key() {
        let err = Client::new(ClientConfig::new(
            "mailto:someone",
            AdminKey::new("sk-ant-admin01-SECRET".into()),
        ))
        .unwrap_err();
        assert_eq!(err.kind(), ApiErrorKind::Config);
        let err = Client::new(ClientConfig::new(
            "http://localhost",
            AdminKey::new("sk-ant-admin01-SEC\u{7f}RET".into()),
        ))
        .unwrap_err();
        assert_eq!(err.kind(), ApiErrorKind::Config);
        assert!(!err.to_string().contains("SEC"));
        assert!(!format!("{:?}", client()).contains("admin01"));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_a_capped_retry_after() {
        let mut cfg = ClientConfig::new("http://localhost", AdminKey::new("sk-ant-admin".into()));
        cfg.base_backoff = Duration::from_millis(100);
        cfg.max_backoff = Duration::from_millis(300);
        cfg.max_retry_after = Duration::from_secs(5);
        let c = Client::new(cfg).unwrap();
        for _ in 0..50 {
            let d0 = c.backoff(0, None);
            assert!(d0 > Duration::from_millis(75) && d0 <= Duration::from_millis(100));
            let d1 = c.backoff(1, None);
            assert!(d1 > Duration::from_millis(150) && d1 <= Duration::from_millis(200));
            let d5 = c.backoff(5, None);
            assert!(d5 > Duration::from_millis(225) && d5 <= Duration::from_millis(300));
        }
        assert_eq!(
            c.backoff(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            c.backoff(0, Some(Duration::from_secs(600))),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", HeaderValue::from_static("0.5"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(500)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn rate_limit_headers_are_read_when_the_limit_and_what_remains_are_there() {
        let mut h = HeaderMap::new();
        assert_eq!(RateLimitStatus::from_headers(&h), None);
        h.insert(
            "anthropic-ratelimit-requests-limit",
            HeaderValue::from_static("600"),
        );
        assert_eq!(RateLimitStatus::from_headers(&h), None);
        h.insert(
            "anthropic-ratelimit-requests-remaining",
            HeaderValue::from_static("599"),
        );
        h.insert(
            "anthropic-ratelimit-requests-reset",
            HeaderValue::from_static("not a time"),
        );
        assert_eq!(
            RateLimitStatus::from_headers(&h),
            Some(RateLimitStatus {
                limit: 600,
                remaining: 599,
                reset: None
            })
        );
        h.insert(
            "anthropic-ratelimit-requests-reset",
            HeaderValue::from_static("2026-12-03T17:01:00Z"),
        );
        assert_eq!(
            RateLimitStatus::from_headers(&h).unwrap().reset,
            DateTime::parse_from_rfc3339("2026-12-03T17:01:00Z")
                .ok()
                .map(|t| t.with_timezone(&Utc))
        );
    }

    #[test]
    fn the_user_agent_names_orgkeeper_and_its_version() {
        assert_eq!(
            USER_AGENT,
            format!(
                "Orgkeeper/{} (+self-hosted admin dashboard)",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
