//! The middle of the house: every change to the organization, exactly once.
//!
//! Each change is one function in the module of its area (`members`, `invites`, `workspaces`,
//! `keys`, `schedules`). It takes a [`Caller`] — a signed-in account or the system acting for a
//! job — and does, in order: the permission and workspace-scope check (a refusal is audited),
//! the intent record (if that cannot be written nothing is called: fail closed), the Admin API
//! call, the outcome record with the upstream status and request id, and the invalidation of
//! what the change touched. Pages, bulk actions, the offboarding wizard, the leaked-key flow
//! and background jobs all call the same functions, so one action has one audit code and one
//! set of rules.
//!
//! Web handlers never call the client's write methods; this module and its children are the
//! only place that does.

pub mod accounts;
pub mod activity;
pub mod alerts;
pub mod budgets;
pub mod chain;
pub mod cost;
pub mod cost_centers;
pub mod follow;
pub mod invites;
pub mod keys;
pub mod limits;
pub mod members;
pub mod observed_alerts;
pub mod offboarding;
pub mod reconcile;
pub mod refusals;
pub mod schedules;
pub mod scim;
pub mod sign_in;
pub mod sso;
pub mod sweep;
pub mod sync;
pub mod tokens;
pub mod usage;
pub mod usage_view;
pub mod workspaces;

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use sqlx::SqlitePool;

use crate::anthropic::ApiError;
use crate::audit::{Action, Actor, AuditError, AuditLog, NewEntry, Outcome, Source, Target};
use crate::auth::accounts::Account;
use crate::auth::Permission;
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::org::{Org, Touched};

/// What the dashboard holds and every change goes through. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// Private to the service layer: pages and the API read the model and the usage store,
    /// and change anything only through a service function.
    pub(in crate::service) db: SqlitePool,
    /// The accounts signed-in sessions name, in memory; every account change in this module
    /// forgets them, and a change by another process is seen within
    /// `ServerConfig::accounts_recheck`.
    pub(in crate::service) account_cache: Arc<crate::auth::account_cache::AccountCache>,
    pub audit: AuditLog,
    /// The organization as read from the Admin API (cached), and the client for changes.
    pub org: Arc<Org>,
    pub config: Arc<ServerConfig>,
    pub clock: Clock,
    /// The audit chain's last verification, for the audit page and the broken-chain banner.
    pub chain: Arc<chain::ChainMonitor>,
    /// Outgoing alerts (budget thresholds), one HTTP client for all of them.
    pub alerts: alerts::Alerts,
    /// What pages read of the usage store (usage, cost, budgets): reads only.
    pub usage: crate::usage_store::Store,
    /// What pages read of cost per person: reads only.
    pub analytics: crate::analytics_store::Store,
    /// What pages computed from the usage store, until it next changes.
    pub reports: Arc<crate::usage_store::Memo>,
    /// Flood control of the audit records refused anonymous requests leave.
    pub refusals: Arc<refusals::Refusals>,
    /// Sign-in failures per address and unknown name.
    pub throttle: Arc<crate::auth::throttle::LoginThrottle>,
    /// Requests per API token and minute.
    pub token_rate: Arc<tokens::RateLimit>,
    /// The identity provider's last SCIM requests, for the SCIM page.
    pub scim_log: Arc<scim::RequestLog>,
    /// Held by a full sync and by a round that follows the Activity Feed: one at a time.
    pub following: Arc<tokio::sync::Mutex<()>>,
    /// Where the sweep is in its pass over the organization.
    pub sweep: Arc<sweep::Sweep>,
}

/// Who asks for a change.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A signed-in dashboard account, from where it is.
    Person { account: Account, source: Source },
    /// A script with one of an account's API tokens: the account's role and workspaces (read
    /// at each use), narrowed by the token (read-only, some workspaces). Audited as the
    /// account, `via` the token.
    Token {
        account: Account,
        token: Arc<crate::auth::tokens::Token>,
        /// The workspaces it may reach (`None`: all): the account's, narrowed by the token's.
        scope: Option<Vec<String>>,
        source: Source,
    },
    /// An identity provider's SCIM client, named in the audit log (`SCIM (okta)`).
    Scim {
        token: Arc<crate::auth::tokens::Token>,
        source: Source,
    },
    /// A background job or the command line, named in the audit log (`system (scheduler)`).
    System { name: &'static str },
}

impl Caller {
    pub const SCHEDULER: Caller = Caller::System {
        name: "system (scheduler)",
    };
    pub const BUDGETS: Caller = Caller::System { name: "system" };

    /// An account's token as a caller: its scope is the account's workspaces (team leads) or
    /// the whole organization, narrowed to the token's workspaces if it names some.
    pub fn with_token(
        account: Account,
        token: Arc<crate::auth::tokens::Token>,
        source: Source,
    ) -> Caller {
        let account_scope = account
            .role
            .is_workspace_scoped()
            .then(|| account.workspaces.clone());
        let scope = match (account_scope, &token.workspaces) {
            (None, None) => None,
            (Some(own), None) => Some(own),
            (None, Some(narrowed)) => Some(narrowed.clone()),
            (Some(own), Some(narrowed)) => Some(
                narrowed
                    .iter()
                    .filter(|w| own.contains(w))
                    .cloned()
                    .collect(),
            ),
        };
        Caller::Token {
            account,
            token,
            scope,
            source,
        }
    }

    pub fn actor(&self) -> Actor {
        match self {
            Caller::Person { account, .. } | Caller::Token { account, .. } => {
                Actor::account(account.id, &account.username, account.role.as_str())
            }
            Caller::Scim { token, .. } => Actor {
                name: format!("SCIM ({})", token.name),
                role: Some("scim".into()),
                ..Actor::system()
            },
            Caller::System { name } => Actor {
                name: (*name).to_owned(),
                ..Actor::system()
            },
        }
    }

    pub fn source(&self) -> Source {
        match self {
            Caller::Person { source, .. }
            | Caller::Token { source, .. }
            | Caller::Scim { source, .. } => source.clone(),
            Caller::System { .. } => Source::default(),
        }
    }

    /// The name stored beside local rows a caller creates (schedules, runs).
    pub fn name(&self) -> String {
        match self {
            Caller::Person { account, .. } | Caller::Token { account, .. } => {
                account.username.clone()
            }
            Caller::Scim { token, .. } => format!("SCIM ({})", token.name),
            Caller::System { name } => (*name).to_owned(),
        }
    }

    /// The means, when it is not the account itself: `token NAME` (recorded as `via`).
    pub fn via(&self) -> Option<String> {
        match self {
            Caller::Token { token, .. } => Some(format!("token {}", token.name)),
            _ => None,
        }
    }

    /// Jobs act with the organization's full authority; people with their role's; a token
    /// with its account's, less what it is narrowed from; a SCIM client manages members.
    pub fn can(&self, permission: Permission) -> bool {
        match self {
            Caller::Person { account, .. } => account.role.can(permission),
            Caller::Token {
                account,
                token,
                scope,
                ..
            } => {
                account.role.can(permission)
                    && !(token.read_only && permission.is_change())
                    && !(scope.is_some() && permission.is_organization_wide())
            }
            Caller::Scim { .. } => matches!(
                permission,
                Permission::ManageOrganization
                    | Permission::ViewDirectory
                    | Permission::ViewWorkspaces
            ),
            Caller::System { .. } => true,
        }
    }

    /// The workspaces the caller may reach: `None` means all of them (team leads: theirs).
    pub fn workspace_scope(&self) -> Option<&[String]> {
        match self {
            Caller::Person { account, .. } => account
                .role
                .is_workspace_scoped()
                .then_some(account.workspaces.as_slice()),
            Caller::Token { scope, .. } => scope.as_deref(),
            Caller::Scim { .. } | Caller::System { .. } => None,
        }
    }

    /// Whether the caller's workspace scope includes this workspace (team leads: only theirs).
    pub fn may_touch_workspace(&self, workspace_id: &str) -> bool {
        self.workspace_scope()
            .is_none_or(|ids| ids.iter().any(|id| id == workspace_id))
    }

    /// Whether the caller may reach this key: keys of its workspaces; an organization-scoped
    /// key belongs to no workspace, so only callers with the whole organization.
    pub fn may_reach_key(&self, key: &crate::anthropic::ApiKey) -> bool {
        match key.workspace_id() {
            Some(workspace) => self.may_touch_workspace(workspace),
            None => self.workspace_scope().is_none(),
        }
    }

    pub fn entry(
        &self,
        action: Action,
        target: Option<Target>,
        details: Value,
        outcome: Outcome,
    ) -> NewEntry {
        let details = match self.via() {
            Some(via) => with_context(details, serde_json::json!({ "via": via })),
            None => details,
        };
        NewEntry {
            target,
            details,
            ..NewEntry::new(self.actor(), self.source(), action, outcome)
        }
    }
}

/// Why the dashboard itself refused a change (as opposed to the Admin API refusing it, which
/// is the inner `Err` of a [`Change`]).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller's role or workspace scope does not allow it. Audited as `access.denied`.
    #[error("not allowed")]
    Forbidden,
    /// A rule refused the request; the message says which, in plain words, and that nothing
    /// was changed. A page shows it beside the form, which keeps what was typed.
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist.
    #[error("not found")]
    NotFound,
    /// The request no longer fits what is there (it changed meanwhile); the message says how.
    #[error("{0}")]
    Conflict(String),
    /// What the decision needed could not be read: the model has not finished its first sync,
    /// or a re-read failed. Nothing was changed.
    #[error(transparent)]
    Unread(#[from] ApiError),
    /// The audit log could not be written, so nothing was changed (fail closed).
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The result of a change: `Err` the dashboard refused (nothing was called), `Ok(Err)` the
/// Admin API refused or failed (explained to the person), `Ok(Ok)` done.
pub type Change<T> = Result<Result<T, ApiError>, ServiceError>;

/// One organization change as the audit log describes it.
pub struct OrgChange {
    pub action: Action,
    pub target: Option<Target>,
    pub details: Value,
    /// The workspace the change is in, for the caller's scope check.
    pub workspace: Option<String>,
    /// What the model re-reads afterwards, whatever happened (a failure may still have
    /// changed something upstream). What a change creates is re-read from its answer.
    pub touches: Vec<Touched>,
}

impl Services {
    /// How many accounts signed-in sessions name are in memory now.
    pub fn accounts_in_memory(&self) -> usize {
        self.account_cache.len()
    }

    /// Everything the dashboard runs on, over this database, configuration and Admin API
    /// client. The organization model starts from what the database holds.
    pub async fn new(
        db: SqlitePool,
        config: ServerConfig,
        api: crate::anthropic::Client,
        clock: Clock,
    ) -> anyhow::Result<Services> {
        Ok(Services {
            audit: AuditLog::new(db.clone()),
            usage: crate::usage_store::Store::new(db.clone()),
            analytics: crate::analytics_store::Store::new(db.clone()),
            org: Arc::new(Org::load(api, db.clone(), clock.clone()).await?),
            account_cache: Arc::new(crate::auth::account_cache::AccountCache::new(
                config.accounts_recheck,
            )),
            db,
            alerts: alerts::Alerts::new(config.alert_webhook_url.clone())?,
            reports: Default::default(),
            refusals: Default::default(),
            // 30 failures from one address, or 5 against one unknown name, per 15 minutes;
            // at most 16,384 addresses and names tracked, the rest throttled together.
            throttle: Arc::new(crate::auth::throttle::LoginThrottle::new(
                std::time::Duration::from_secs(15 * 60),
                30,
                5,
                16_384,
            )),
            token_rate: Default::default(),
            scim_log: Default::default(),
            following: Default::default(),
            sweep: Default::default(),
            config: Arc::new(config),
            clock,
            chain: Arc::new(chain::ChainMonitor::default()),
        })
    }

    /// The services for the command line, which changes Orgkeeper's own state only: the
    /// organization is what the database holds, and the Admin API is never called.
    pub async fn offline(db: SqlitePool) -> anyhow::Result<Services> {
        let unused = crate::anthropic::AdminKey::new("sk-ant-admin-offline".into());
        let config = ServerConfig::new(crate::config::Upstream::Live {
            base_url: "http://127.0.0.1:9".into(),
            key: unused.clone(),
        });
        let api = crate::anthropic::Client::new(crate::anthropic::ClientConfig::new(
            "http://127.0.0.1:9",
            unused,
        ))?;
        Services::new(db, config, api, Clock::default()).await
    }

    /// For the readiness probe: a write transaction, rolled back, proves the database file is
    /// writable without changing it; then the Admin API answers `/me`.
    pub async fn probe(&self) -> (Result<(), sqlx::Error>, Result<(), ApiError>) {
        let database = async {
            let mut tx = crate::db::write_tx(&self.db).await?;
            sqlx::query("CREATE TEMP TABLE IF NOT EXISTS readiness_probe (x INTEGER)")
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO readiness_probe (x) VALUES (1)")
                .execute(&mut *tx)
                .await?;
            tx.rollback().await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        let upstream = self.org.api().get_organization().await.map(|_| ());
        (database, upstream)
    }

    /// Closes the database cleanly (the WAL is checkpointed on close).
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Checks a permission for a caller; a refusal is audited and returned as `Forbidden`.
    pub async fn require(
        &self,
        caller: &Caller,
        permission: Permission,
        target: Option<Target>,
    ) -> Result<(), ServiceError> {
        if caller.can(permission) {
            return Ok(());
        }
        let details = serde_json::json!({ "permission": format!("{permission:?}") });
        Err(self.deny(caller, target, details).await)
    }

    /// Records a refusal (`access.denied`, with why in `details`) and returns `Forbidden`.
    pub async fn deny(
        &self,
        caller: &Caller,
        target: Option<Target>,
        details: Value,
    ) -> ServiceError {
        let entry = caller.entry(Action::AccessDenied, target, details, Outcome::Denied);
        match self.audit.append(entry).await {
            Ok(_) => ServiceError::Forbidden,
            Err(error) => error.into(),
        }
    }

    /// The one refusal of something outside the caller's workspaces: recorded (one text for
    /// every kind of object) and answered as `Forbidden`, before anything about it is shown.
    pub async fn out_of_scope(
        &self,
        caller: &Caller,
        target: Option<Target>,
        workspace: Option<&str>,
    ) -> ServiceError {
        let details = serde_json::json!({
            "reason": "outside the caller's workspaces",
            "workspace_id": workspace,
        });
        self.deny(caller, target, details).await
    }

    /// Appends one record for a caller.
    pub async fn record(
        &self,
        caller: &Caller,
        action: Action,
        target: Option<Target>,
        details: Value,
        outcome: Outcome,
    ) -> Result<i64, AuditError> {
        self.audit
            .append(caller.entry(action, target, details, outcome))
            .await
    }

    /// The intent record written before a change (outcome `pending`).
    async fn intent(
        &self,
        caller: &Caller,
        action: Action,
        target: &Option<Target>,
        details: &Value,
    ) -> Result<i64, AuditError> {
        self.record(
            caller,
            action,
            target.clone(),
            details.clone(),
            Outcome::Pending,
        )
        .await
    }

    /// An organization change audited around the Admin API call; see the module comment.
    pub(crate) async fn org_change<T, Fut>(
        &self,
        caller: &Caller,
        change: OrgChange,
        call: Fut,
    ) -> Change<T>
    where
        Fut: Future<Output = Result<T, ApiError>>,
    {
        self.org_change_creating(caller, change, call, |_| None)
            .await
    }

    /// [`Services::org_change`] for a change that creates something: `created` names it from
    /// the answer (its id exists only then) and becomes the outcome record's target.
    pub(crate) async fn org_change_creating<T, Fut>(
        &self,
        caller: &Caller,
        change: OrgChange,
        call: Fut,
        created: impl FnOnce(&T) -> Option<Target>,
    ) -> Change<T>
    where
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let OrgChange {
            action,
            target,
            details,
            workspace,
            touches,
        } = change;
        self.require(caller, Permission::ManageOrganization, target.clone())
            .await?;
        // A caller limited to some workspaces changes only inside them: never the
        // organization as a whole (members, invites, organization keys and limits).
        let in_scope = match &workspace {
            Some(workspace) => caller.may_touch_workspace(workspace),
            None => caller.workspace_scope().is_none(),
        };
        if !in_scope {
            return Err(self
                .out_of_scope(caller, target, workspace.as_deref())
                .await);
        }
        let intent = self.intent(caller, action, &target, &details).await?;
        self.org.mark(&touches);
        let result = call.await;
        let made = result.as_ref().ok().and_then(created);
        let mut touches = touches;
        touches.extend(made.as_ref().and_then(touched_by_creating));
        if let Err(error) = self.org.reread(&touches).await {
            tracing::warn!(%error, action = action.code(), "the model will catch up with this change at the next sync");
        }
        let entry = match &result {
            Ok(_) => caller.entry(action, made.or(target), details, Outcome::Ok),
            Err(error) => {
                let mut details = details;
                if let Value::Object(map) = &mut details {
                    map.insert("error".into(), Value::String(error.message().to_owned()));
                    if let Some(kind) = error.error_type() {
                        map.insert("error_type".into(), Value::String(kind.to_owned()));
                    }
                }
                caller
                    .entry(action, target, details, Outcome::Failed)
                    .upstream(error.status(), error.request_id().map(str::to_owned))
            }
        };
        if let Err(error) = self.audit.append(entry.intent(intent)).await {
            // The change happened upstream; its intent is on record. Say so loudly.
            tracing::error!(%error, action = action.code(), "the outcome of an organization change could not be audited");
            return Err(error.into());
        }
        Ok(result)
    }

    /// A change to Orgkeeper's own data (accounts, budgets, schedules) between an intent and an
    /// outcome record, so no change happens without a trace and a refusal keeps its reason.
    pub async fn local_change<T, E, Fut>(
        &self,
        caller: &Caller,
        action: Action,
        target: Option<Target>,
        details: Value,
        change: Fut,
        created: impl FnOnce(&T) -> Option<Target>,
    ) -> Result<Result<T, E>, AuditError>
    where
        E: LocalRefusal,
        Fut: Future<Output = Result<T, E>>,
    {
        let intent = self.intent(caller, action, &target, &details).await?;
        let result = change.await;
        let entry = match &result {
            Ok(value) => caller.entry(action, created(value).or(target), details, Outcome::Ok),
            Err(error) => {
                let mut details = details;
                if let Value::Object(map) = &mut details {
                    map.insert("reason".into(), Value::String(error.to_string()));
                }
                caller.entry(action, target, details, error.outcome())
            }
        };
        self.audit.append(entry.intent(intent)).await?;
        Ok(result)
    }
}

/// How a failed local change is recorded: `failed` unless the error says it was a refusal.
pub trait LocalRefusal: std::fmt::Display {
    fn outcome(&self) -> Outcome {
        Outcome::Failed
    }
}

impl LocalRefusal for sqlx::Error {}

/// `details` with the fields of `context` added (why a change was made: bulk, offboarding, …).
pub fn with_context(mut details: Value, context: Value) -> Value {
    if let (Value::Object(map), Value::Object(extra)) = (&mut details, context) {
        map.extend(extra);
    }
    details
}

/// What the model re-reads for something a change created, named by its audit target.
fn touched_by_creating(made: &Target) -> Option<Touched> {
    match made.kind.as_str() {
        "invite" => Some(Touched::Invite(made.id.clone())),
        "workspace" => Some(Touched::Workspace(made.id.clone())),
        "api_key" => Some(Touched::Key(made.id.clone())),
        _ => None,
    }
}

/// Builds an audit target.
pub fn target(kind: &str, id: impl Into<String>, label: Option<String>) -> Option<Target> {
    Some(Target {
        kind: kind.to_owned(),
        id: id.into(),
        label,
    })
}
