//! HTTP: the router, shared state, and the layers every request passes through.

pub mod accounts;
pub mod assets;
pub mod audit;
pub mod context;
pub mod cost_centers;
pub mod cost_people;
pub mod csrf;
pub mod error;
pub mod escape;
pub mod extract;
pub mod health;
pub mod home;
pub mod invites;
pub mod keys;
pub mod limits;
pub mod login;
pub mod members;
pub mod org;
pub mod page;
pub mod present;
pub mod routes;
pub mod scim;
pub mod sso;
pub mod tokens;
pub mod usage;
pub mod workspaces;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::session_store::CachedSessions;
use crate::auth::Permission;
use crate::service::Services;
pub use context::Ctx;
pub use error::{AppError, AppResult};
use routes::Access::{Needs, Public, SignedIn};
pub use routes::{Access, RouteSpec, Routes};

/// A one-time link that lets the first person create the owner account.
pub struct SetupToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// What every handler can reach: the service layer (which derefs from here, so
/// `state.db`, `state.org` and `state.config` read naturally) and what only the web needs.
/// One `Arc`: every request clones the state several times (extractors, middleware), and a
/// clone of every field's handle cost a tenth of a page view under load.
#[derive(Clone)]
pub struct AppState(Arc<WebParts>);

pub struct WebParts {
    pub services: Services,
    pub setup: Mutex<Option<SetupToken>>,
    /// Sign-in with the company's OpenID Connect provider, when configured.
    pub oidc: Option<Arc<crate::auth::oidc::Oidc>>,
}

impl AppState {
    pub fn new(services: Services, oidc: Option<Arc<crate::auth::oidc::Oidc>>) -> Self {
        AppState(Arc::new(WebParts {
            services,
            setup: Mutex::new(None),
            oidc,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = WebParts;

    fn deref(&self) -> &WebParts {
        &self.0
    }
}

impl std::ops::Deref for WebParts {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// Builds the whole application. `session_store` must already be migrated.
pub fn router(state: AppState, session_store: CachedSessions) -> Router {
    let sessions = SessionManagerLayer::new(session_store)
        .with_name("orgkeeper_session")
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(state.config.secure_cookies)
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(state.config.session_idle)
                .unwrap_or(time::Duration::minutes(30)),
        ));

    let pages = page_routes()
        .into_router(&state)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Innermost, so the page it makes gets the layout like every other error.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panicked,
        ))
        // Order matters: the session layer runs first, then CSRF, which reads the session.
        .layer(middleware::from_fn(csrf::protect))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            audit_csrf_rejections,
        ))
        // After the session layer, before CSRF and the route guards: a trusted proxy's header
        // signs the request in before anything checks who is signed in.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            sso::proxy_login,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), one_deadline))
        .layer(middleware::from_fn(refuse_long_addresses))
        .layer(middleware::from_fn_with_state(state.clone(), error_layout))
        .layer(sessions)
        .layer(middleware::from_fn(htmx_errors))
        .layer(DefaultBodyLimit::max(1024 * 1024));

    open_routes()
        .into_router(&state)
        // Orgkeeper's Admin API for tokens: its own layers, no session or CSRF.
        .merge(crate::api::router(&state))
        .merge(crate::scim::router(&state))
        .merge(pages)
        // A panic in a layer outside the pages' own catch still gets a page, without layout.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panicked))
        .layer(middleware::from_fn(security_headers))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            // Only the path: query strings can carry one-time tokens.
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state)
}

/// Routes outside the session and CSRF layers: health checks and assets.
fn open_routes() -> Routes {
    Routes::new()
        .get("/healthz", Public, health::healthz)
        .get("/readyz", Public, health::readyz)
        .get("/static/{*path}", Public, assets::serve)
}

/// Every page and form, behind the session and CSRF layers.
fn page_routes() -> Routes {
    use Permission::*;
    let owner = Needs(ManageAccounts);
    Routes::new()
        .get("/", Needs(ViewWorkspaces), home::show)
        .get("/login", Public, login::form)
        .post("/login", Public, login::submit)
        .post("/logout", SignedIn, login::logout)
        .get("/setup", Public, login::setup_form)
        .post("/setup", Public, login::setup_submit)
        .get("/account/password", SignedIn, accounts::own_password_form)
        .post("/account/password", SignedIn, accounts::own_password_submit)
        .get("/accounts", owner, accounts::index)
        .post("/accounts", owner, accounts::create)
        .get("/accounts/{id}", owner, accounts::show)
        .post("/accounts/{id}/role", owner, accounts::change_role)
        .post(
            "/accounts/{id}/workspaces",
            owner,
            accounts::change_workspaces,
        )
        .post("/accounts/{id}/disable", owner, accounts::disable)
        .post("/accounts/{id}/enable", owner, accounts::enable)
        .post("/accounts/{id}/password", owner, accounts::reset_password)
        .post("/accounts/{id}/end-sessions", owner, accounts::end_sessions)
        .post("/accounts/{id}/unlock", owner, accounts::unlock)
        .post("/accounts/{id}/tokens", owner, accounts::create_token)
        .get("/tokens", SignedIn, tokens::index)
        .post("/tokens", SignedIn, tokens::create)
        .post("/tokens/{id}/revoke", SignedIn, tokens::revoke)
        .get("/scim", owner, scim::index)
        .post("/scim/tokens", owner, scim::create_token)
        .post("/scim/mappings", owner, scim::add_mapping)
        .post("/scim/mappings/{id}/delete", owner, scim::remove_mapping)
        .get("/audit", Needs(ViewAudit), audit::index)
        .get("/audit/{seq}", Needs(ViewAudit), audit::show)
        .get("/audit/export", Needs(ViewAudit), audit::export)
        .post("/audit/verify", Needs(ViewAudit), audit::verify_now)
        .post(
            "/audit/acknowledge",
            Needs(ManageOrganization),
            audit::acknowledge,
        )
        // Single sign-on: the provider's way in and out (public), and the group mappings.
        .get("/auth/oidc/start", Public, sso::oidc_start)
        .get("/auth/oidc/callback", Public, sso::oidc_callback)
        .post("/sso/groups", owner, sso::add_mapping)
        .post("/sso/groups/{id}/enable", owner, sso::enable_mapping)
        .post("/sso/groups/{id}/disable", owner, sso::disable_mapping)
        .post("/sso/groups/{id}/delete", owner, sso::remove_mapping)
        .merge(members::routes())
        .merge(invites::routes())
        .merge(workspaces::routes())
        .merge(keys::routes())
        .merge(usage::routes())
        .merge(cost_people::routes())
        .merge(cost_centers::routes())
        .merge(org::routes())
        // Anthropic's spend and rate limits (issue 13).
        .get("/limits", Needs(ViewUsage), limits::index)
        .post("/limits/spend", Needs(ManageOrganization), limits::set)
        .post(
            "/limits/spend/remove",
            Needs(ManageOrganization),
            limits::remove,
        )
        .get(
            "/limits/workspaces/{id}",
            Needs(ViewWorkspaces),
            limits::rate_page,
        )
        .post(
            "/limits/workspaces/{id}",
            Needs(ManageOrganization),
            limits::rate_set,
        )
        .post("/limits/requests", Needs(ViewUsage), limits::request)
        .post(
            "/limits/requests/{id}/approve",
            Needs(ManageOrganization),
            limits::approve,
        )
        .post(
            "/limits/requests/{id}/deny",
            Needs(ManageOrganization),
            limits::deny,
        )
}

/// Every route with the access it requires (for the authorization test and the docs).
pub fn route_table() -> Vec<RouteSpec> {
    let mut table = open_routes().table();
    table.extend(page_routes().table());
    table
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// One deadline for every Admin API call a page view or action makes (re-reads, writes,
/// pages of a list): the person waits at most `--api-deadline-seconds` for Anthropic in all.
async fn one_deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    crate::anthropic::within(state.config.api_deadline, next.run(request)).await
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// The longest address (path and query) a page reads. Orgkeeper's own links stay far below;
/// a longer one is refused before anything parses it.
const MAX_ADDRESS: usize = 16 * 1024;

async fn refuse_long_addresses(request: Request, next: Next) -> Response {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if length > MAX_ADDRESS {
        return AppError::UriTooLong.into_response();
    }
    next.run(request).await
}

/// Security headers, in one place. References: OWASP Secure Headers Project.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    // Scripts, styles and images only from this origin: no inline script, no CDN.
    set(
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    );
    // Never framed (clickjacking); CSP frame-ancestors for modern browsers, this for old ones.
    set("x-frame-options", "DENY");
    // No MIME sniffing of our responses.
    set("x-content-type-options", "nosniff");
    // Links to the Console must not carry our URLs (which hold ids).
    set("referrer-policy", "same-origin");
    // No powerful browser features are used.
    set(
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    set("cross-origin-opener-policy", "same-origin");
    if !is_static {
        // Pages show organization data: never store them in shared or browser caches.
        set("cache-control", "no-store");
        // htmx partials and full pages share URLs.
        set("vary", "HX-Request");
    }
    response
}

/// Error pages (400, 403, 404, 502…) inside the normal layout, with the navigation, account
/// menu and demo banner of whoever is signed in, so an error is never a dead end. Runs inside
/// the session layer; htmx partial requests are left to [`htmx_errors`].
async fn error_layout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use axum::extract::{ConnectInfo, FromRequestParts};
    let partial = context::wants_partial(request.headers());
    // What signing the reader in again needs, kept before the request is consumed.
    let (mut probe, ()) = Request::new(()).into_parts();
    probe.method = request.method().clone();
    probe.uri = request.uri().clone();
    probe.headers = request.headers().clone();
    if let Some(session) = request.extensions().get::<tower_sessions::Session>() {
        probe.extensions.insert(session.clone());
    }
    if let Some(peer) = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
    {
        probe.extensions.insert(*peer);
    }
    let response = next.run(request).await;
    let Some(notice) = response.extensions().get::<error::ErrorNotice>().cloned() else {
        return response;
    };
    if partial {
        return response;
    }
    let layout = match Ctx::from_request_parts(&mut probe, &state).await {
        Ok(ctx) => ctx.layout(notice.title, "").await,
        Err(_) => context::Layout::anonymous(&state, notice.title, String::new()),
    };
    let page = error::ErrorInLayout {
        layout,
        status: response.status().as_u16(),
        title: notice.title,
        message: notice.message,
    };
    let Ok(html) = askama::Template::render(&page) else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(html))
}

/// For htmx requests, an error becomes a notice in the page's message area instead of a
/// whole error page swapped into the middle of a table.
async fn htmx_errors(request: Request, next: Next) -> Response {
    // Boosted navigation swaps whole pages, so it gets the full error page.
    let htmx = context::wants_partial(request.headers());
    let response = next.run(request).await;
    let Some(notice) = response.extensions().get::<error::ErrorNotice>().cloned() else {
        return response;
    };
    if !htmx {
        return response;
    }
    let status = response.status();
    let body = format!(
        "<div class=\"flash flash-error mb-3\" role=\"alert\"><strong>{}</strong> {}</div>",
        escape::visible(notice.title),
        escape::visible(&notice.message)
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        Body::from(body),
    )
        .into_response();
    response
        .headers_mut()
        .insert("hx-retarget", HeaderValue::from_static("#flash"));
    response
        .headers_mut()
        .insert("hx-reswap", HeaderValue::from_static("innerHTML"));
    response
}

/// CSRF refusals are security events: record who tried, from where. Anyone can send them, so
/// they pass the service's flood control (a few per address and minute one by one, the rest
/// summed up; see [`crate::service::refusals`]).
async fn audit_csrf_rejections(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let client = context::ClientInfo::from_parts(&parts, state.config.trust_proxy);
    let path = parts.uri.path().to_owned();
    let response = next.run(Request::from_parts(parts, body)).await;
    if response.extensions().get::<csrf::CsrfRejected>().is_some()
        && response.status() == StatusCode::FORBIDDEN
    {
        if let Err(error) = state.record_csrf_refusal(client.source(), &path).await {
            tracing::error!(%error, "could not audit a CSRF rejection");
        }
    }
    response
}
