//! The signed-in person behind a request, the permission check every route makes, and what
//! every page's layout needs.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_sessions::Session;

use super::error::AppError;
use super::AppState;
use crate::audit::{Actor, NewEntry, Outcome, Source, Target};
use crate::auth::accounts::{self, Account};
use crate::auth::{session, Permission, Role};

/// Whether an htmx request wants only the updated region. Boosted navigation (links and
/// forms inside `<main hx-boost>`) and history restores want the whole page, as does any
/// request without htmx.
pub fn wants_partial(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
        && !headers.contains_key("hx-boosted")
        && !headers.contains_key("hx-history-restore-request")
}

/// Where the request came from, for the audit log and the sign-in throttle.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: Option<String>,
    pub htmx: bool,
}

impl ClientInfo {
    pub fn from_parts(parts: &Parts, trust_proxy: bool) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        Self::from_headers(&parts.headers, peer, trust_proxy)
    }

    fn from_headers(headers: &HeaderMap, peer: Option<String>, trust_proxy: bool) -> Self {
        // Behind our own reverse proxy the client is the last hop the proxy appended.
        let forwarded = trust_proxy
            .then(|| {
                headers
                    .get("x-forwarded-for")?
                    .to_str()
                    .ok()?
                    .rsplit(',')
                    .next()
                    .map(|s| s.trim().to_owned())
            })
            .flatten()
            .filter(|s| !s.is_empty());
        Self {
            ip: forwarded.or(peer).unwrap_or_else(|| "unknown".into()),
            user_agent: headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(300).collect()),
            htmx: wants_partial(headers),
        }
    }

    pub fn source(&self) -> Source {
        Source {
            ip: Some(self.ip.clone()),
            user_agent: self.user_agent.clone(),
        }
    }
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts, state.config.trust_proxy))
    }
}

/// How a failed local change is recorded: `failed` unless the error says it was a refusal.
pub trait ChangeError: std::fmt::Display {
    fn outcome(&self) -> Outcome {
        Outcome::Failed
    }
}

impl ChangeError for sqlx::Error {}

/// A short message shown once on the next page (post/redirect/get).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flash {
    pub kind: String,
    pub message: String,
}

const FLASH_KEY: &str = "flash";

/// A signed-in, active account with a valid session. Extracting it is the authentication
/// check; [`Ctx::require`] is the authorization check.
pub struct Ctx {
    pub state: AppState,
    pub account: Account,
    pub session: Session,
    pub csrf: String,
    pub client: ClientInfo,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .filter(|_| parts.method == axum::http::Method::GET);
        let not_signed_in = || AppError::NotSignedIn { next: next.clone() };
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| not_signed_in())?;
        let Some(login) = session::login_of(&session).await else {
            return Err(not_signed_in());
        };
        let account = accounts::find_by_id(&state.db, login.account_id).await?;
        let too_old =
            Utc::now().timestamp() - login.signed_in_at > state.config.session_max.as_secs() as i64;
        let account = match account {
            Some(account)
                if !account.disabled && account.session_epoch == login.epoch && !too_old =>
            {
                account
            }
            _ => {
                // Ended, disabled, or past its absolute lifetime: forget it entirely.
                let _ = session::sign_out(&session).await;
                return Err(not_signed_in());
            }
        };
        let csrf = session::csrf_token(&session).await?;
        Ok(Ctx {
            state: state.clone(),
            account,
            session,
            csrf,
            client: ClientInfo::from_parts(parts, state.config.trust_proxy),
        })
    }
}

impl Ctx {
    pub fn role(&self) -> Role {
        self.account.role
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.account.role.can(permission)
    }

    /// The server-side authorization check. A refusal is audited and answered with a 403 page.
    pub async fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.can(permission) {
            return Ok(());
        }
        self.audit(
            "access.denied",
            None,
            serde_json::json!({ "permission": format!("{permission:?}") }),
            Outcome::Denied,
        )
        .await?;
        Err(AppError::Forbidden)
    }

    /// Team leads may read only their assigned workspaces; everyone else reads all of them.
    pub fn may_read_workspace(&self, workspace_id: &str) -> bool {
        !self.role().is_workspace_scoped()
            || self.account.workspaces.iter().any(|w| w == workspace_id)
    }

    pub fn actor(&self) -> Actor {
        Actor {
            account_id: Some(self.account.id),
            name: self.account.username.clone(),
            role: Some(self.account.role.as_str().to_owned()),
        }
    }

    pub fn entry(
        &self,
        action: &str,
        target: Option<Target>,
        details: Value,
        outcome: Outcome,
    ) -> NewEntry {
        NewEntry {
            actor: self.actor(),
            source: self.client.source(),
            action: action.to_owned(),
            target,
            details,
            outcome,
            upstream_status: None,
            upstream_request_id: None,
            intent_seq: None,
        }
    }

    /// Appends one audit record; failure refuses the action (fail closed).
    pub async fn audit(
        &self,
        action: &str,
        target: Option<Target>,
        details: Value,
        outcome: Outcome,
    ) -> Result<i64, AppError> {
        Ok(self
            .state
            .audit
            .append(self.entry(action, target, details, outcome))
            .await?)
    }

    /// An organization change through the Admin API, audited around the call: the intent is
    /// written first (if that fails the call is never made), then the outcome with the upstream
    /// status and request id. `Ok(Err(..))` is an upstream refusal or failure for the page to
    /// explain; `Err(..)` means the dashboard refused (role, or audit log unavailable).
    pub async fn org_action<T, Fut>(
        &self,
        action: &str,
        target: Option<Target>,
        details: Value,
        call: Fut,
    ) -> Result<Result<T, crate::anthropic::ApiError>, AppError>
    where
        Fut: std::future::Future<Output = Result<T, crate::anthropic::ApiError>>,
    {
        self.org_action_creating(action, target, details, call, |_| None)
            .await
    }

    /// [`Ctx::org_action`] for a change that creates something: `created` names it from the
    /// answer (its id exists only then), and becomes the outcome record's target.
    pub async fn org_action_creating<T, Fut>(
        &self,
        action: &str,
        target: Option<Target>,
        details: Value,
        call: Fut,
        created: impl FnOnce(&T) -> Option<Target>,
    ) -> Result<Result<T, crate::anthropic::ApiError>, AppError>
    where
        Fut: std::future::Future<Output = Result<T, crate::anthropic::ApiError>>,
    {
        self.require(Permission::ManageOrganization).await?;
        let intent = self
            .audit(action, target.clone(), details.clone(), Outcome::Pending)
            .await?;
        let result = call.await;
        let mut entry = match &result {
            Ok(value) => self.entry(action, created(value).or(target), details, Outcome::Ok),
            Err(error) => {
                let mut details = details;
                if let Value::Object(map) = &mut details {
                    map.insert("error".into(), Value::String(error.message().to_owned()));
                    if let Some(kind) = error.error_type() {
                        map.insert("error_type".into(), Value::String(kind.to_owned()));
                    }
                }
                let mut entry = self.entry(action, target, details, Outcome::Failed);
                entry.upstream_status = error.status();
                entry.upstream_request_id = error.request_id().map(str::to_owned);
                entry
            }
        };
        entry.intent_seq = Some(intent);
        if let Err(error) = self.state.audit.append(entry).await {
            // The change happened upstream; its intent is on record. Say so loudly.
            tracing::error!(%error, action, "the outcome of an organization change could not be audited");
            return Err(error.into());
        }
        Ok(result)
    }

    /// A change to Orgkeeper's own data (accounts, budgets) between an intent record and an
    /// outcome record, so no change happens without a trace and a refusal keeps its reason.
    /// `Err(..)` means the audit log could not be written (the change is then not attempted).
    pub async fn local_change<T, E, Fut>(
        &self,
        action: &str,
        target: Option<Target>,
        details: Value,
        change: Fut,
    ) -> Result<Result<T, E>, AppError>
    where
        E: ChangeError,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        self.local_change_creating(action, target, details, change, |_| None)
            .await
    }

    /// [`Ctx::local_change`] for a change that creates something named by `created`.
    pub async fn local_change_creating<T, E, Fut>(
        &self,
        action: &str,
        target: Option<Target>,
        details: Value,
        change: Fut,
        created: impl FnOnce(&T) -> Option<Target>,
    ) -> Result<Result<T, E>, AppError>
    where
        E: ChangeError,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let intent = self
            .audit(action, target.clone(), details.clone(), Outcome::Pending)
            .await?;
        let result = change.await;
        let mut entry = match &result {
            Ok(value) => self.entry(action, created(value).or(target), details, Outcome::Ok),
            Err(error) => {
                let mut details = details;
                if let Value::Object(map) = &mut details {
                    map.insert("reason".into(), Value::String(error.to_string()));
                }
                self.entry(action, target, details, error.outcome())
            }
        };
        entry.intent_seq = Some(intent);
        self.state.audit.append(entry).await?;
        Ok(result)
    }

    /// The workspaces this person may read: `None` means all of them.
    pub fn workspace_scope(&self) -> Option<&[String]> {
        self.role()
            .is_workspace_scoped()
            .then_some(self.account.workspaces.as_slice())
    }

    pub async fn flash(&self, kind: &str, message: impl Into<String>) {
        let flash = Flash {
            kind: kind.to_owned(),
            message: message.into(),
        };
        if let Err(error) = self.session.insert(FLASH_KEY, flash).await {
            tracing::warn!(%error, "could not store a flash message");
        }
    }

    /// Everything the base template needs, taking any pending flash message.
    pub async fn layout(&self, title: impl Into<String>, section: &'static str) -> Layout {
        let flash = self.session.remove::<Flash>(FLASH_KEY).await.ok().flatten();
        let chain_alert = if self.can(Permission::ViewAudit) {
            super::chain::unacknowledged_break(&self.state).await
        } else {
            None
        };
        Layout {
            title: title.into(),
            section,
            user: Some(UserNav {
                username: self.account.username.clone(),
                role_label: self.account.role.label(),
            }),
            nav: nav_for(self.account.role, section),
            csrf: self.csrf.clone(),
            demo: self.state.config.is_demo(),
            asset_version: super::assets::version(),
            htmx_path: super::assets::htmx_path(),
            flash,
            chain_alert,
        }
    }
}

pub struct UserNav {
    pub username: String,
    pub role_label: &'static str,
}

pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

/// What every page's base template needs.
pub struct Layout {
    pub title: String,
    pub section: &'static str,
    pub user: Option<UserNav>,
    pub nav: Vec<NavLink>,
    pub csrf: String,
    pub demo: bool,
    pub asset_version: &'static str,
    pub htmx_path: &'static str,
    pub flash: Option<Flash>,
    /// A broken audit chain nobody has acknowledged yet: (first bad record, reason).
    pub chain_alert: Option<(i64, String)>,
}

impl Layout {
    /// The layout of pages seen before signing in.
    pub fn anonymous(state: &AppState, title: impl Into<String>, csrf: String) -> Self {
        Layout {
            title: title.into(),
            section: "",
            user: None,
            nav: Vec::new(),
            csrf,
            demo: state.config.is_demo(),
            asset_version: super::assets::version(),
            htmx_path: super::assets::htmx_path(),
            flash: None,
            chain_alert: None,
        }
    }
}

/// The navigation, from the same permission table the server enforces.
const NAV: &[(&str, &str, &str, Permission)] = &[
    ("home", "/", "Overview", Permission::ViewWorkspaces),
    ("members", "/members", "Members", Permission::ViewDirectory),
    ("invites", "/invites", "Invites", Permission::ViewDirectory),
    (
        "workspaces",
        "/workspaces",
        "Workspaces",
        Permission::ViewWorkspaces,
    ),
    ("keys", "/keys", "API keys", Permission::ViewWorkspaces),
    ("usage", "/usage", "Usage", Permission::ViewUsage),
    ("cost", "/cost", "Cost", Permission::ViewUsage),
    (
        "claude-code",
        "/claude-code",
        "Claude Code",
        Permission::ViewUsage,
    ),
    ("audit", "/audit", "Audit log", Permission::ViewAudit),
    (
        "accounts",
        "/accounts",
        "Accounts",
        Permission::ManageAccounts,
    ),
];

fn nav_for(role: Role, section: &str) -> Vec<NavLink> {
    NAV.iter()
        .filter(|(_, _, _, permission)| role.can(*permission))
        .map(|(key, href, label, _)| NavLink {
            href,
            label,
            active: *key == section,
        })
        .collect()
}

/// Builds an audit target.
pub fn target(kind: &str, id: impl Into<String>, label: Option<String>) -> Option<Target> {
    Some(Target {
        kind: kind.to_owned(),
        id: id.into(),
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_address_is_used_only_when_the_proxy_is_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        let trusted = ClientInfo::from_headers(&headers, Some("127.0.0.1".into()), true);
        assert_eq!(trusted.ip, "10.0.0.2");
        let untrusted = ClientInfo::from_headers(&headers, Some("127.0.0.1".into()), false);
        assert_eq!(untrusted.ip, "127.0.0.1");
    }

    #[test]
    fn viewers_get_no_accounts_or_audit_links() {
        let labels: Vec<_> = nav_for(Role::Viewer, "").iter().map(|l| l.label).collect();
        assert!(!labels.contains(&"Accounts"));
        assert!(!labels.contains(&"Audit log"));
        assert!(labels.contains(&"Overview"));
    }
}
