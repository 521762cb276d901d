//! An in-memory simulator of the Anthropic Admin API, served over real HTTP.
//!
//! It follows `shared/admin-api.md` and the `anthropic` 2.10.0 Python types: the error envelope
//! and `request-id` header on every response, ID-cursor pagination (creation order, oldest
//! first), page-token reports, and the documented refusals. It shares no code with the client in
//! `crate::anthropic`, only the HTTP contract.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use orgkeeper::simulator::{start, SimulatorOptions};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sim = start(listener, SimulatorOptions::default()).await?;
//! println!("Admin API at {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Layout: `state.rs` (seeded organization), `routes.rs` (the HTTP contract), `usage.rs`
//! (usage/cost/Claude Code/rate-limit reports as pure functions), `analytics.rs` (usage and
//! cost per actor, from the same functions), `faults.rs` (fault injection), `ratelimit.rs`
//! (request budgets per minute: 429, `retry-after`, `anthropic-ratelimit-requests-*`),
//! `http.rs` (error envelope, query parsing, cursor pagination).

mod activity;
mod analytics;
mod control;
mod faults;
use crate::contract as http;
mod limits;
mod ratelimit;
mod routes;
mod state;
mod usage;

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use activity::CONSOLE_IP;
pub use faults::{FaultKind, FaultRule, FaultSpec, Faults};
pub use limits::SpendLimitsAccess;
pub use ratelimit::COMPLIANCE_PER_MINUTE;

/// Size of the seeded organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// ~40 members, 6 workspaces, ~80 API keys, dense usage.
    #[default]
    Demo,
    /// 5,000 members, 100 workspaces, 20,000 API keys, sparser usage.
    Large,
    /// 50,000 members, 1,000 workspaces, 200,000 API keys, invites and usage in proportion.
    XLarge,
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "demo" => Ok(Profile::Demo),
            "large" => Ok(Profile::Large),
            "xlarge" => Ok(Profile::XLarge),
            other => Err(format!(
                "unknown simulator profile '{other}' (expected 'demo', 'large' or 'xlarge')"
            )),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Demo => "demo",
            Profile::Large => "large",
            Profile::XLarge => "xlarge",
        })
    }
}

/// How to seed the simulated organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulatorOptions {
    pub profile: Profile,
    pub seed: u64,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            profile: Profile::Demo,
            seed: 42,
        }
    }
}

/// A simulator serving on its listener in a spawned task, until `shutdown` or drop.
pub struct RunningSimulator {
    addr: SocketAddr,
    app: Arc<routes::App>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Seeds the organization (relative to midnight UTC today) and serves the Admin API on
/// `listener`.
pub async fn start(
    listener: tokio::net::TcpListener,
    options: SimulatorOptions,
) -> std::io::Result<RunningSimulator> {
    start_serving(listener, options, false).await
}

/// [`start`], plus the `/_faults` control endpoint (see `control.rs`) so that faults can be
/// set from outside the process.
pub async fn start_with_fault_control(
    listener: tokio::net::TcpListener,
    options: SimulatorOptions,
) -> std::io::Result<RunningSimulator> {
    start_serving(listener, options, true).await
}

async fn start_serving(
    listener: tokio::net::TcpListener,
    options: SimulatorOptions,
    fault_control: bool,
) -> std::io::Result<RunningSimulator> {
    let addr = listener.local_addr()?;
    let state = state::OrgState::generate(options.profile, options.seed, state::anchor_now());
    let app = Arc::new(routes::App {
        state: Mutex::new(state),
        faults: Arc::new(Faults::new(options.seed)),
        requests: AtomicU64::new(0),
        requests_by_area: Mutex::default(),
        request_ids: AtomicU64::new(0),
        seed: options.seed,
        clock_offset: AtomicI64::new(0),
        rate_limits: Mutex::new(ratelimit::RateLimits::default()),
    });
    let mut router = routes::router(app.clone());
    if fault_control {
        router = router.merge(control::routes(app.faults.clone()));
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, service).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "simulator stopped with an error");
        }
    });
    Ok(RunningSimulator {
        addr,
        app,
        shutdown: Some(tx),
        task: Some(task),
    })
}

impl RunningSimulator {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Fault controls, usable while the simulator serves.
    pub fn faults(&self) -> Arc<Faults> {
        self.app.faults.clone()
    }

    /// Every HTTP request received so far (faulted and rejected ones included).
    pub fn request_count(&self) -> u64 {
        self.app.requests.load(Ordering::Relaxed)
    }

    /// Whether the simulated organization may use spend limits through the Admin API.
    pub fn set_spend_limits_access(&self, access: SpendLimitsAccess) {
        self.app
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spend_access = access;
    }

    /// Whether the admin key may read the Activity Feed. Off, the feed answers 403
    /// `permission_error` ("Missing required scopes"), as for an admin key created before the
    /// Compliance API was enabled; activities are recorded either way.
    pub fn set_activity_feed(&self, readable: bool) {
        self.lock().activity_feed = readable;
    }

    /// How long each activity takes to appear in the feed, by the simulator's clock (zero
    /// unless set; the real feed takes about a minute).
    pub fn set_activity_delay(&self, delay: std::time::Duration) {
        self.lock().activity_delay =
            chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
    }

    /// Whether the Usage and Cost Analytics API answers. Off, it answers 403
    /// `permission_error`, as for an organization it is not enabled for.
    pub fn set_analytics_access(&self, enabled: bool) {
        self.lock().analytics = enabled;
    }

    /// Off: changes leave no activity in the feed (a gap in its ingestion), so only a full
    /// read of the organization finds them. On by default.
    pub fn record_activities(&self, on: bool) {
        self.lock().recording_activities = on;
    }

    /// Requests a minute the Admin API takes before answering 429 with `retry-after` (`0`, the
    /// default: no limit and no rate-limit headers). The Compliance API's budget is its
    /// documented 600 a minute either way. Windows are whole minutes of the simulator's clock.
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.app
            .rate_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admin_per_minute = per_minute;
    }

    /// How many activities the feed holds (every kind, feed reads included).
    pub fn activity_count(&self) -> usize {
        self.lock().activities.len()
    }

    /// Every request made to the feed (answered or refused), oldest first: its URL.
    pub fn feed_requests(&self) -> Vec<String> {
        self.lock()
            .activities
            .iter()
            .filter(|a| a.kind == "compliance_api_accessed")
            .filter_map(|a| {
                a.fields
                    .get("url")
                    .and_then(|u| u.as_str())
                    .map(str::to_owned)
            })
            .collect()
    }

    /// What a signed-in Console user (`user_id`, from `ip_address`) does there: changes the
    /// Admin API cannot make, or makes as an admin key. Each leaves a `user_actor` activity.
    pub fn console(&self, user_id: &str, ip_address: &str) -> Console<'_> {
        Console {
            sim: self,
            user_id: user_id.to_owned(),
            ip_address: ip_address.to_owned(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, state::OrgState> {
        self.app.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reset_request_count(&self) {
        self.app.requests.store(0, Ordering::Relaxed);
        self.app
            .requests_by_area
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Requests since the last reset, per area of the API (`compliance`, `users`, `api_keys`,
    /// `usage_report`, …).
    pub fn request_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.app
            .requests_by_area
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The simulator's time: the wall clock plus what [`advance_clock`](Self::advance_clock)
    /// added.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.app.now()
    }

    /// Moves the simulator's clock forward (invite expiry, key expiry, usage "now", the feed's
    /// delay, rate-limit windows).
    pub fn advance_clock(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 2);
        self.app.clock_offset.fetch_add(ms, Ordering::Relaxed);
    }

    /// The invited person accepts their pending invitation (by following its link, outside
    /// any API): they become a member with the invite's role. Returns their user id, or
    /// `None` if no pending invite has that address.
    pub fn accept_invite(&self, email: &str) -> Option<String> {
        let now = self.app.now();
        let mut st = self.lock();
        let at = st
            .invites
            .iter()
            .position(|i| i.email.eq_ignore_ascii_case(email) && i.status(now) == "pending")?;
        st.invites[at].accepted_at = Some(now);
        let (role, email) = (st.invites[at].role, st.invites[at].email.clone());
        let seq = st.seq();
        let id = st.new_id("user");
        st.users.push(state::User {
            seq,
            id: id.clone(),
            email,
            name: String::new(),
            role,
            added_at: now,
        });
        Some(id)
    }

    /// What someone does in the Console, which the Admin API cannot do: creates an active
    /// key in `workspace_id`, made by `created_by` (from [`CONSOLE_IP`]), without expiry.
    /// Returns its id.
    pub fn console_create_key(&self, name: &str, workspace_id: &str, created_by: &str) -> String {
        self.console(created_by, CONSOLE_IP)
            .create_key(name, workspace_id)
    }

    /// Stops accepting connections; waits up to a second for in-flight requests (a hung
    /// request is abandoned).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(std::time::Duration::from_secs(1), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

/// A Console user at work; see [`RunningSimulator::console`].
pub struct Console<'a> {
    sim: &'a RunningSimulator,
    user_id: String,
    ip_address: String,
}

impl Console<'_> {
    fn record(&self, st: &mut state::OrgState, kind: &str, fields: serde_json::Value) {
        let actor = activity::user_actor(st, &self.user_id, &self.ip_address);
        activity::append(st, self.sim.app.now(), actor, kind, fields);
    }

    /// Changes a member's organization role (the Console may make admins). False if there is
    /// no such member.
    pub fn set_role(&self, user_id: &str, role: &str) -> bool {
        let mut st = self.sim.lock();
        let Some(role) = state::OrgRole::parse(role) else {
            return false;
        };
        let Some(user) = st.users.iter_mut().find(|u| u.id == user_id) else {
            return false;
        };
        let previous = user.role;
        user.role = role;
        let email = user.email.clone();
        self.record(
            &mut st,
            "claude_user_role_updated",
            serde_json::json!({ "user_id": user_id, "user_email": email,
                                "previous_role": previous.as_str(), "current_role": role.as_str() }),
        );
        true
    }

    /// Removes a member from the organization (their personal keys are archived). False if
    /// there is no such member.
    pub fn remove_member(&self, user_id: &str) -> bool {
        let mut st = self.sim.lock();
        let Some(user) = st.user(user_id).cloned() else {
            return false;
        };
        routes::remove_user(&mut st, &user);
        self.record(
            &mut st,
            "org_user_deleted",
            serde_json::json!({ "deleted_user_id": user_id, "deleted_user_email": user.email }),
        );
        true
    }

    /// Creates an active key in `workspace_id`, made by this user, without expiry. Returns its
    /// id.
    pub fn create_key(&self, name: &str, workspace_id: &str) -> String {
        let now = self.sim.app.now();
        let mut st = self.sim.lock();
        let created_by = self.user_id.as_str();
        let seq = st.seq();
        let id = st.new_id("apikey");
        let hint = format!("sk-ant-api03-{}...{:04}", &id[id.len() - 4..], seq % 10_000);
        st.api_keys.push(state::ApiKey {
            seq,
            id: id.clone(),
            name: name.to_owned(),
            workspace_id: Some(workspace_id.to_owned()),
            created_at: now,
            created_by: Some(created_by.to_owned()),
            principal: None,
            expires_at: None,
            partial_key_hint: hint,
            status: state::KeyStatus::Active,
        });
        self.record(
            &mut st,
            "platform_api_key_created",
            serde_json::json!({ "api_key_id": id }),
        );
        id
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for RunningSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningSimulator")
            .field("addr", &self.addr)
            .field("requests", &self.request_count())
            .finish()
    }
}
