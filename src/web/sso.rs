//! Single sign-on: the OpenID Connect start and callback, the trusted proxy header, and the
//! group mappings owners edit on the Accounts page.
//!
//! Every sign-in path ends in [`sign_in_identity`]: the service creates or updates the account
//! from the mappings and records it (`service::sign_in`), then the session starts exactly as
//! for the password form (`session::sign_in`: new session id, the account's epoch, idle and
//! absolute timeouts).

use crate::web::extract::FormBody;
use askama::Template;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;
use tower_sessions::Session;

use super::context::{ClientInfo, Layout};
use super::error::{AppError, AppResult};
use super::extract::{Path, Query};
use super::login::{safe_next, NextQuery};
use super::{AppState, Ctx};
use crate::audit::{Actor, Outcome};
use crate::auth::accounts::Account;
use crate::auth::oidc::{Callback, OidcError};
use crate::auth::sso::Identity;
use crate::auth::{session, Role};
use crate::service::sign_in::{self, IdentitySignIn};
use crate::service::{self, ServiceError};

/// Carries the `state` of a sign-in in progress. `SameSite=Lax`, unlike the session cookie,
/// because the provider sends the browser back with a cross-site navigation.
const STATE_COOKIE: &str = "orgkeeper_oidc";

#[derive(Template)]
#[template(path = "sso/refused.html")]
struct RefusedPage {
    layout: Layout,
    heading: String,
    message: String,
    /// The first few of the person's groups, and how many more there are.
    groups: Vec<String>,
    more_groups: usize,
}

#[derive(Template)]
#[template(path = "sso/continue.html")]
struct ContinuePage {
    next: String,
    asset_version: &'static str,
}

fn refused(
    state: &AppState,
    status: StatusCode,
    heading: &str,
    message: String,
    groups: Vec<String>,
) -> AppResult<Response> {
    const SHOWN: usize = 50;
    let more_groups = groups.len().saturating_sub(SHOWN);
    let page = RefusedPage {
        layout: Layout::anonymous(state, heading, String::new()),
        heading: heading.to_owned(),
        message,
        groups: groups.into_iter().take(SHOWN).collect(),
        more_groups,
    };
    crate::web::page::render(status, &page)
}

/// Signs in someone the identity provider vouched for (through the service, which creates or
/// updates the account and records it) and starts their session exactly as the password form
/// does. `Ok(Err(page))`: refused, with the page to show (already audited).
pub async fn sign_in_identity(
    state: &AppState,
    session: &Session,
    client: &ClientInfo,
    identity: &Identity,
) -> AppResult<Result<Account, Response>> {
    match sign_in::with_identity(state, &client.source(), identity).await? {
        IdentitySignIn::SignedIn(account) => {
            session::sign_in(session, &account, state.clock.now()).await?;
            Ok(Ok(account))
        }
        IdentitySignIn::NoAccess { message } => Ok(Err(refused(
            state,
            StatusCode::FORBIDDEN,
            "Ask an owner for access",
            message,
            identity.groups.clone(),
        )?)),
        IdentitySignIn::Refused { message } => Ok(Err(refused(
            state,
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            message,
            Vec::new(),
        )?)),
    }
}

fn state_cookie(state: &AppState, value: &str, max_age: u32) -> HeaderValue {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{STATE_COOKIE}={value}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("the sealed state is base64url and a dot")
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `GET /auth/oidc/start`: off to the identity provider.
pub async fn oidc_start(
    State(state): State<AppState>,
    client: ClientInfo,
    Query(query): Query<NextQuery>,
) -> AppResult<Response> {
    let Some(oidc) = state.oidc.clone() else {
        return Err(AppError::NotFound);
    };
    match oidc
        .start(safe_next(query.next.as_deref()), state.clock.now())
        .await
    {
        Ok(started) => {
            let mut response = Redirect::to(&started.url).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                state_cookie(&state, &started.cookie, 600),
            );
            Ok(response)
        }
        Err(error) => {
            let status = StatusCode::BAD_GATEWAY;
            oidc_failed(&state, &client, &error, Outcome::Failed, status).await
        }
    }
}

/// A sign-in through the provider that could not start (502) or was refused (401): recorded
/// (flood-controlled, as every anonymous failure) and explained.
async fn oidc_failed(
    state: &AppState,
    client: &ClientInfo,
    error: &OidcError,
    outcome: Outcome,
    status: StatusCode,
) -> AppResult<Response> {
    sign_in::record_failure(
        state,
        &client.source(),
        Actor::named("(unknown)"),
        json!({ "method": "oidc", "reason": error.reason(), "error": error.to_string() }),
        outcome,
    )
    .await?;
    let title = if status == StatusCode::BAD_GATEWAY {
        "Sign-in could not start"
    } else {
        "Sign-in failed"
    };
    refused(state, status, title, error.to_string(), Vec::new())
}

/// `GET /auth/oidc/callback`: the provider sends the browser back here.
pub async fn oidc_callback(
    State(state): State<AppState>,
    session: Session,
    client: ClientInfo,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> AppResult<Response> {
    let Some(oidc) = state.oidc.clone() else {
        return Err(AppError::NotFound);
    };
    let cookie = cookie_value(&headers, STATE_COOKIE).map(str::to_owned);
    let finished = oidc
        .finish(cookie.as_deref(), callback, state.clock.now())
        .await;
    let mut response = match finished {
        Err(error) => {
            let status = StatusCode::UNAUTHORIZED;
            oidc_failed(&state, &client, &error, Outcome::Denied, status).await?
        }
        Ok((identity, next)) => match sign_in_identity(&state, &session, &client, &identity).await?
        {
            Err(page) => page,
            // A page rather than a redirect: the browser arrived from the provider's site, and
            // would not send the (SameSite=Strict) session cookie along a redirect from there.
            Ok(_) => Html(
                ContinuePage {
                    next,
                    asset_version: super::assets::version(),
                }
                .render()
                .map_err(anyhow::Error::from)?,
            )
            .into_response(),
        },
    };
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state_cookie(&state, "", 0));
    Ok(response)
}

/// Trusted proxy header sign-in, in front of every page. From a trusted address the header
/// names the person (a different person than the session's signs in afresh); from any other
/// address a request carrying the header is refused and audited, since anyone can send it. So
/// is a request that carries the identity or groups header twice: which one a proxy meant
/// cannot be known, and believing the first would let a client's own copy through a proxy
/// that appends instead of overwriting.
pub async fn proxy_login(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(proxy) = state.config.sso.proxy.clone() else {
        return next.run(request).await;
    };
    let headers = request.headers().clone();
    let repeated = std::iter::once(proxy.header.as_str())
        .chain(proxy.groups_header.as_deref())
        .find(|name| headers.get_all(*name).iter().count() > 1)
        .map(str::to_owned);
    let header_value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let Some(name) = header_value(&proxy.header) else {
        return next.run(request).await;
    };
    let groups: Vec<String> = proxy
        .groups_header
        .as_deref()
        .and_then(header_value)
        .map(|v| {
            // Comma-separated (oauth2-proxy, Pomerium) or `|`-separated (authentik).
            v.split([',', '|'])
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let (mut parts, body) = request.into_parts();
    let client = ClientInfo::from_parts(&parts, state.config.trust_proxy);
    // The socket's peer, never X-Forwarded-For: the header is believed from the proxy itself.
    let peer = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let trusted = peer.is_some_and(|ip| proxy.trusted.contains(ip));
    if !trusted || repeated.is_some() {
        let (reason, message) = match &repeated {
            Some(header) if trusted => (
                "repeated_header",
                format!("This request carries the {header} header more than once, so who it is for cannot be known, and it was refused. Check that the proxy replaces the header instead of adding to it."),
            ),
            _ => (
                "untrusted_peer",
                format!("This request carries the {} sign-in header but did not come through the trusted proxy, so it was refused.", proxy.header),
            ),
        };
        let details = json!({ "header": repeated.as_deref().unwrap_or(&proxy.header), "reason": reason,
                              "claimed": name.chars().take(64).collect::<String>(),
                              "peer": peer.map(|p| p.to_string()), "path": parts.uri.path() });
        if let Err(error) = sign_in::record_refused_header(&state, &client.source(), details).await
        {
            return AppError::from(error).into_response();
        }
        return refused(
            &state,
            StatusCode::FORBIDDEN,
            "Request refused",
            message,
            Vec::new(),
        )
        .unwrap_or_else(IntoResponse::into_response);
    }
    let Some(session) = parts.extensions.get::<Session>().cloned() else {
        return AppError::Internal(anyhow::anyhow!("no session layer")).into_response();
    };
    let identity = Identity {
        provider: "proxy",
        subject: name.to_lowercase(),
        username: name,
        groups,
    };
    // Already signed in as this person, with the same groups, in a live session: nothing to
    // do. Other groups sign in again, so the proxy's groups apply at the next request.
    if let Some(login) = session::login_of(&session).await {
        let same = sign_in::is_same_identity(&state, login.account_id, &identity).await;
        if same && session_is_live(&mut parts, &state).await {
            return next.run(Request::from_parts(parts, body)).await;
        }
    }
    match sign_in_identity(&state, &session, &client, &identity).await {
        Ok(Ok(_)) => next.run(Request::from_parts(parts, body)).await,
        Ok(Err(page)) => page,
        Err(error) => error.into_response(),
    }
}

/// Whether the request's session is a valid sign-in (not ended, not timed out).
async fn session_is_live(parts: &mut axum::http::request::Parts, state: &AppState) -> bool {
    use axum::extract::FromRequestParts;
    Ctx::from_request_parts(parts, state).await.is_ok()
}

// ---- Group mappings (owners, on the Accounts page) ----

/// Back to the Accounts page with what happened, or why nothing did.
async fn done(
    ctx: &Ctx,
    result: Result<usize, ServiceError>,
    success: String,
) -> AppResult<Response> {
    match result {
        Ok(changed) => {
            let tail = match changed {
                0 => String::new(),
                1 => " One account changed; its sessions were ended.".to_owned(),
                n => format!(" {n} accounts changed; their sessions were ended."),
            };
            ctx.flash("success", format!("{success}{tail}")).await;
        }
        Err(ServiceError::Invalid(message)) => ctx.flash("error", message).await,
        Err(other) => return Err(other.into()),
    }
    Ok(Redirect::to("/accounts#groups").into_response())
}

/// `POST /sso/groups`: map a group to a role.
pub async fn add_mapping(ctx: Ctx, FormBody(body): FormBody) -> AppResult<Response> {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let group = field("group");
    let workspaces: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "workspace")
        .map(|(_, v)| v.clone())
        .collect();
    // A refusal shows the page again with what was typed, the reason beside the form.
    let typed = super::accounts::MappingForm {
        group: group.clone(),
        role: field("role"),
        workspaces: workspaces.clone(),
    };
    let role: Role = match field("role").parse() {
        Ok(role) => role,
        Err(message) => return super::accounts::render_mapping_error(&ctx, typed, message).await,
    };
    let result =
        service::sso::add_mapping(&ctx.state, &ctx.caller(), &group, role, workspaces).await;
    if let Err(ServiceError::Invalid(message)) = result {
        return super::accounts::render_mapping_error(&ctx, typed, message).await;
    }
    done(
        &ctx,
        result,
        format!("People in {group} now sign in as {}.", role.label()),
    )
    .await
}

async fn set_enabled(ctx: Ctx, id: i64, enabled: bool) -> AppResult<Response> {
    let mapping = service::sso::find_mapping(&ctx.state, id).await?;
    let result =
        service::sso::set_mapping_enabled(&ctx.state, &ctx.caller(), &mapping, enabled).await;
    let word = if enabled { "on" } else { "off" };
    done(
        &ctx,
        result,
        format!("The mapping of {} is {word}.", mapping.group_name),
    )
    .await
}

pub async fn enable_mapping(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    set_enabled(ctx, id, true).await
}

pub async fn disable_mapping(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    set_enabled(ctx, id, false).await
}

pub async fn remove_mapping(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    let mapping = service::sso::find_mapping(&ctx.state, id).await?;
    let result = service::sso::remove_mapping(&ctx.state, &ctx.caller(), &mapping).await;
    done(
        &ctx,
        result,
        format!("The mapping of {} is removed.", mapping.group_name),
    )
    .await
}
