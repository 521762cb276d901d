//! The signed-in person behind a request, the permission check every route makes, and what
//! every page's layout needs.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::error::AppError;
use super::AppState;
use crate::audit::Source;
use crate::auth::accounts::Account;
use crate::auth::{session, Permission, Role};
use crate::service::Caller;

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

/// A short message shown once on the next page (post/redirect/get).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flash {
    pub kind: String,
    pub message: String,
}

impl Flash {
    /// The Primer flash classes for this kind ("success", "error", "warning", "info").
    pub fn class(&self) -> &'static str {
        match self.kind.as_str() {
            "success" => "flash flash-success",
            "error" => "flash flash-error",
            "warning" => "flash flash-warn",
            _ => "flash",
        }
    }
}

const FLASH_KEY: &str = "flash";

/// A signed-in, active account with a valid session. Extracting it is the authentication
/// check; [`Ctx::require`] is the authorization check.
#[derive(Clone)]
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
        // The route guard already signed this request in.
        if let Some(ctx) = parts.extensions.get::<Ctx>() {
            return Ok(ctx.clone());
        }
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
        let account = crate::service::accounts::of_session(state, login.account_id).await?;
        let now = state.clock.now().timestamp();
        let too_old = now - login.signed_in_at > state.config.session_max.as_secs() as i64;
        // Idle time is also checked against the clock (the cookie store's own expiry uses the
        // wall clock and stays as a backstop).
        let idle = login
            .last_seen
            .is_some_and(|seen| now - seen > state.config.session_idle.as_secs() as i64);
        let account = match account {
            Some(account)
                if !account.disabled
                    && account.session_epoch == login.epoch
                    && !too_old
                    && !idle =>
            {
                account
            }
            _ => {
                // Ended, disabled, or past its absolute lifetime: forget it entirely.
                let _ = session::sign_out(&session).await;
                return Err(not_signed_in());
            }
        };
        session::touch(&session, &login, now).await;
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

    /// This person as the service layer sees them.
    pub fn caller(&self) -> Caller {
        Caller::Person {
            account: self.account.clone(),
            source: self.client.source(),
        }
    }

    /// The server-side authorization check. A refusal is audited and answered with a 403 page.
    pub async fn require(&self, permission: Permission) -> Result<(), AppError> {
        // Checked here first: every request passes, and only a refusal needs a `Caller`.
        if self.can(permission) {
            return Ok(());
        }
        Ok(self.state.require(&self.caller(), permission, None).await?)
    }

    /// Team leads may read only their assigned workspaces; everyone else reads all of them.
    pub fn may_read_workspace(&self, workspace_id: &str) -> bool {
        self.account.may_reach_workspace(workspace_id)
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
        // Read before removing: removing marks the session changed, and a page view should
        // not be a session write when there is no message.
        let flash = match self.session.get::<Flash>(FLASH_KEY).await.ok().flatten() {
            Some(_) => self.session.remove::<Flash>(FLASH_KEY).await.ok().flatten(),
            None => None,
        };
        let chain_alert = if self.can(Permission::ViewAudit) {
            crate::service::chain::unacknowledged_break(&self.state).await
        } else {
            None
        };
        Layout {
            title: title.into(),
            section,
            user: Some(UserNav {
                username: self.account.username.clone(),
                role_label: self.account.role.label(),
                has_password: self.account.identity_provider.is_none(),
            }),
            nav: nav_for(self.account.role, section),
            csrf: self.csrf.clone(),
            demo: self.state.config.is_demo(),
            asset_version: super::assets::version(),
            htmx_path: super::assets::htmx_path(),
            primer_path: super::assets::primer_path(),
            flash,
            chain_alert,
            freshness: ORG_SECTIONS
                .contains(&section)
                .then(|| Freshness::of(&self.state, self.can(Permission::ManageOrganization))),
        }
    }
}

/// The sections whose pages read the organization model, and say how fresh it is.
const ORG_SECTIONS: &[&str] = &["home", "members", "invites", "workspaces", "keys"];

/// "Organization data as of 12 s ago", and whether the last sync failed.
pub struct Freshness {
    /// Plain age ("12 s ago"); `None` before the first sync.
    pub age: Option<String>,
    /// The exact time, for the title attribute.
    pub at: String,
    pub failing: Option<String>,
    pub can_refresh: bool,
}

impl Freshness {
    fn of(state: &AppState, can_refresh: bool) -> Self {
        let now = state.clock.now();
        let f = state.org.freshness();
        Freshness {
            age: f.synced_at.map(|at| age(now - at)),
            at: f
                .synced_at
                .map(|at| crate::labels::moment_label(&at))
                .unwrap_or_default(),
            failing: f.failing.map(|(_, message)| message),
            can_refresh,
        }
    }
}

/// A short plain age: "just now", "12 s ago", "5 min ago", "3 h ago", "2 days ago".
pub fn age(elapsed: chrono::Duration) -> String {
    let s = elapsed.num_seconds().max(0);
    match s {
        0..=4 => "just now".to_owned(),
        5..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

pub struct UserNav {
    pub username: String,
    pub role_label: &'static str,
    /// Accounts of the identity provider have no password to change here.
    pub has_password: bool,
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
    /// The vendored Primer stylesheet, linked before app.css.
    pub primer_path: &'static str,
    pub flash: Option<Flash>,
    /// A broken audit chain nobody has acknowledged yet: (first bad record, reason).
    pub chain_alert: Option<(i64, String)>,
    /// How fresh the organization data is, on pages that show it.
    pub freshness: Option<Freshness>,
}

impl Layout {
    /// Whether the signed-in person may read the audit log and the access review (its link
    /// is in their navigation), for pages that point to them.
    pub fn can_audit(&self) -> bool {
        self.nav.iter().any(|link| link.href == "/audit")
    }

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
            primer_path: super::assets::primer_path(),
            flash: None,
            chain_alert: None,
            freshness: None,
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
    ("limits", "/limits", "Limits", Permission::ViewUsage),
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
        // Claude Code activity is per person across the organization: a team lead, limited
        // to workspaces, gets nothing there, so the link would be a dead end.
        .filter(|(key, ..)| !(role.is_workspace_scoped() && *key == "claude-code"))
        .map(|(key, href, label, _)| NavLink {
            href,
            label,
            active: *key == section,
        })
        .collect()
}

pub use crate::service::target;

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

    #[test]
    fn team_leads_get_no_claude_code_link() {
        let lead: Vec<_> = nav_for(Role::TeamLead, "").iter().map(|l| l.href).collect();
        assert!(!lead.contains(&"/claude-code"), "{lead:?}");
        assert!(lead.contains(&"/cost"));
        let viewer: Vec<_> = nav_for(Role::Viewer, "").iter().map(|l| l.href).collect();
        assert!(viewer.contains(&"/claude-code"));
    }
}
