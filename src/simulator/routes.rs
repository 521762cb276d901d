//! The HTTP contract: one fallback handler that counts the request, applies faults, checks the
//! headers, dispatches on (method, path) and stamps `request-id` on every response.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::to_bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::faults::{FaultKind, Faults};
use super::http::{self, bad_enum, id_page, ts, ts_secs, ApiError, ApiResult, Query};
use super::ratelimit::Bucket;
use super::state::{
    ApiKey, Invite, KeyStatus, OrgRole, OrgState, Principal, User, Workspace, WorkspaceRole,
    ENTERPRISE_ROLES,
};
use super::{activity, analytics, limits, usage};

const API_VERSIONS: &[&str] = &["2023-06-01", "2026-10-21"];
const ORG_ROLES: &[&str] = &[
    "admin",
    "billing",
    "claude_code_user",
    "developer",
    "managed",
    "membership_admin",
    "owner",
    "primary_owner",
    "user",
];
const ASSIGNABLE_ROLES: &[&str] = &["user", "developer", "billing", "claude_code_user"];
const WORKSPACE_ROLES: &[&str] = &[
    "workspace_user",
    "workspace_developer",
    "workspace_restricted_developer",
    "workspace_admin",
    "workspace_billing",
];
const KEY_STATUSES: &[&str] = &["active", "inactive", "archived", "expired"];
const MAX_BODY: usize = 1 << 20;

/// Shared by the serving task and `RunningSimulator`.
pub(crate) struct App {
    pub state: Mutex<OrgState>,
    pub faults: Arc<Faults>,
    pub requests: AtomicU64,
    /// Requests per area of the API (see [`area`]), for benchmarks that say where calls went.
    pub requests_by_area: Mutex<std::collections::BTreeMap<String, u64>>,
    pub request_ids: AtomicU64,
    pub seed: u64,
    /// Milliseconds added to the wall clock (tests move time forward).
    pub clock_offset: AtomicI64,
    /// The requests-per-minute budgets and their headers.
    pub rate_limits: Mutex<super::ratelimit::RateLimits>,
}

impl App {
    // The simulator stands for Anthropic's servers, whose clock is their own: not the
    // dashboard's (tests move each separately).
    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.clock_offset.load(Ordering::Relaxed))
    }
    fn lock(&self) -> MutexGuard<'_, OrgState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn request_id(&self) -> String {
        let n = self.request_ids.fetch_add(1, Ordering::Relaxed);
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(
            self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let id = super::state::tagged_id(&mut rng, "req");
        // req_01XXXX → req_011C + 20 characters, like the ids in the docs.
        format!("req_011C{}", &id["req_01".len()..id.len() - 2])
    }
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    app.requests.fetch_add(1, Ordering::Relaxed);
    *app.requests_by_area
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(area(req.uri().path()))
        .or_default() += 1;
    let request_id = app.request_id();
    let mut resp = respond(&app, req, &request_id).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        // An echo fault sets its own.
        resp.headers_mut().entry("request-id").or_insert(v);
    }
    resp
}

/// The part of the API a path belongs to: `compliance` for the Activity Feed, otherwise the
/// first segment under `/v1/organizations/` (`users`, `api_keys`, `usage_report`, …).
fn area(path: &str) -> String {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next(), segments.next()) {
        (Some("v1"), Some("compliance"), _) => "compliance".to_owned(),
        (Some("v1"), Some("organizations"), Some(area)) => area.to_owned(),
        _ => "other".to_owned(),
    }
}

fn error_response(err: &ApiError, request_id: &str) -> Response {
    (err.status, axum::Json(err.body(request_id))).into_response()
}

async fn respond(app: &App, req: Request, request_id: &str) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let decision = app.faults.decide(method.as_str(), &path);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if let Some(kind) = decision.fault {
        return match kind {
            FaultKind::RateLimited { retry_after_secs } => {
                let err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    "Number of requests has exceeded your rate limit. Please try again later.",
                );
                let mut resp = error_response(&err, request_id);
                if let Some(secs) = retry_after_secs {
                    resp.headers_mut()
                        .insert("retry-after", HeaderValue::from(secs));
                }
                resp
            }
            FaultKind::Overloaded => error_response(
                &ApiError::new(
                    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    "overloaded_error",
                    "Overloaded",
                ),
                request_id,
            ),
            FaultKind::ServerError => error_response(
                &ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "api_error",
                    "Internal server error",
                ),
                request_id,
            ),
            FaultKind::Hang => {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                StatusCode::GATEWAY_TIMEOUT.into_response()
            }
            FaultKind::Redirect { location } => {
                (StatusCode::FOUND, [("location", location)], "").into_response()
            }
            FaultKind::EchoCredential => {
                let credential = credential_of(req.headers()).to_owned();
                let body = serde_json::json!({
                    "type": "error",
                    "error": { "type": credential, "message": format!("invalid key {credential}"),
                               "details": { "error_code": credential } },
                    "request_id": credential,
                });
                let mut resp = (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
                if let Ok(v) = HeaderValue::from_str(&credential) {
                    resp.headers_mut().insert("request-id", v);
                }
                resp
            }
            FaultKind::Endless => {
                // Both pagination styles: an ID-cursor list and a page-token report.
                let cursor = format!("page_{request_id}");
                axum::Json(serde_json::json!({
                    "data": [], "has_more": true, "first_id": cursor, "last_id": cursor,
                    "next_page": cursor,
                }))
                .into_response()
            }
            FaultKind::Malformed => (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{\"data\": [{\"type\": \"user\", \"id\": ",
            )
                .into_response(),
        };
    }
    // The budget is spent by every request with an admin key that gets past the faults,
    // answered or refused; unauthenticated ones spend nothing (§8.5).
    let bucket = if path.starts_with("/v1/compliance/") {
        Bucket::Compliance
    } else {
        Bucket::Admin
    };
    let spent = if credential_of(req.headers()).starts_with("sk-ant-admin") {
        app.rate_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spend(bucket, app.now())
    } else {
        None
    };
    let mut resp = answer(app, req, request_id, spent.as_ref()).await;
    if let Some(spent) = spent {
        let h = resp.headers_mut();
        h.insert(
            "anthropic-ratelimit-requests-limit",
            HeaderValue::from(spent.limit),
        );
        h.insert(
            "anthropic-ratelimit-requests-remaining",
            HeaderValue::from(spent.remaining),
        );
        if let Ok(v) = HeaderValue::from_str(&ts_secs(spent.reset)) {
            h.insert("anthropic-ratelimit-requests-reset", v);
        }
        if let Some(secs) = spent.retry_after {
            h.insert("retry-after", HeaderValue::from(secs));
        }
    }
    resp
}

/// The answer to a request within (or over) its budget.
async fn answer(
    app: &App,
    req: Request,
    request_id: &str,
    spent: Option<&super::ratelimit::Spent>,
) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if spent.is_some_and(|s| s.retry_after.is_some()) {
        let err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "Number of requests has exceeded your per-minute rate limit. Please try again later.",
        );
        return error_response(&err, request_id);
    }
    let headers = req.headers().clone();
    let caller = caller_of(&req);
    let uri = req.uri().to_string();
    let query = Query::parse(req.uri().query());
    let body = match to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                &ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    "Request exceeds the maximum allowed size.",
                ),
                request_id,
            )
        }
    };
    // The Compliance API's examples send `anthropic-version` or omit it.
    let compliance = path.starts_with("/v1/compliance/");
    let result = check_headers(&headers, !compliance).and_then(|beta| {
        if compliance {
            compliance_api(app, &method, &uri, &query, &caller, request_id)
        } else {
            dispatch(app, &method, &path, &query, &body, &beta, &caller)
        }
    });
    match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => error_response(&e, request_id),
    }
}

/// The credential a request carries (empty when none).
fn credential_of(headers: &axum::http::HeaderMap) -> &str {
    http::credential(headers).unwrap_or_default()
}

/// Who sent a request (for the Activity Feed): their admin key's id, address and user agent.
fn caller_of(req: &Request) -> activity::Caller {
    let headers = req.headers();
    let key = credential_of(headers);
    activity::Caller {
        admin_api_key_id: activity::admin_key_id(key),
        ip_address: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "127.0.0.1".to_owned()),
        user_agent: headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    }
}

/// `/v1/compliance/*`: an Admin key may read the Activity Feed, and only that. Every call is
/// itself recorded in the feed (`compliance_api_accessed`).
fn compliance_api(
    app: &App,
    method: &Method,
    uri: &str,
    q: &Query,
    caller: &activity::Caller,
    request_id: &str,
) -> ApiResult<Value> {
    let path = uri.split('?').next().unwrap_or_default();
    let mut st = app.lock();
    let result = match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "/v1/compliance/activities") if st.activity_feed => {
            activity::list(&st, q, app.now())
        }
        ("GET", "/v1/compliance/activities") => Err(activity::missing_scope()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "Admin API keys may only read /v1/compliance/activities",
        )),
    };
    let status = result
        .as_ref()
        .map(|_| 200)
        .unwrap_or_else(|e| e.status.as_u16());
    activity::append(
        &mut st,
        app.now(),
        caller.api_actor(),
        "compliance_api_accessed",
        json!({ "request_id": request_id, "url": uri, "request_method": method.as_str(),
                "request_body": null, "status_code": status }),
    );
    result
}

/// Auth and version headers; returns the `anthropic-beta` names.
fn check_headers(headers: &HeaderMap, version_required: bool) -> ApiResult<Vec<String>> {
    // The official SDKs (anthropic 2.x) send the key as `Authorization: Bearer`; older
    // clients and the docs' examples use `x-api-key`. Both carry the same admin key.
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    match key {
        None => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "x-api-key header is required",
            ))
        }
        Some(k) if !k.starts_with("sk-ant-admin") => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid x-api-key",
            ))
        }
        Some(_) => {}
    }
    match headers
        .get("anthropic-version")
        .and_then(|v| v.to_str().ok())
    {
        None if !version_required => {}
        None => return Err(ApiError::invalid("anthropic-version: header is required")),
        Some(v) if !API_VERSIONS.contains(&v) => {
            return Err(ApiError::invalid(format!(
                "anthropic-version: invalid version '{v}'; supported versions are {}",
                API_VERSIONS.join(", ")
            )))
        }
        Some(_) => {}
    }
    Ok(headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect())
}

fn m_is_get(m: &Method) -> bool {
    m == Method::GET
}

fn dispatch(
    app: &App,
    method: &Method,
    path: &str,
    q: &Query,
    body: &[u8],
    beta: &[String],
    caller: &activity::Caller,
) -> ApiResult<Value> {
    let not_found = || ApiError::not_found(format!("Not found: {} {path}", method));
    let rest = path
        .strip_prefix("/v1/organizations/")
        .ok_or_else(not_found)?;
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let now = app.now();
    // Reports can be heavy: compute them from a copy of the combos, without holding the lock.
    if m_is_get(method)
        && matches!(
            segs.as_slice(),
            ["usage_report", "messages"] | ["cost_report"]
        )
    {
        let (seed, combos) = {
            let st = app.lock();
            (st.seed, st.combos.clone())
        };
        return if segs[0] == "cost_report" {
            usage::cost_report(seed, &combos, q, now)
        } else {
            usage::usage_report(seed, &combos, q, beta, now)
        };
    }
    if let (true, ["analytics", report]) = (m_is_get(method), segs.as_slice()) {
        if let Some(report) = analytics::Report::of(report) {
            let input = analytics::Input::of(&app.lock());
            return analytics::report(&input, report, q, beta, now);
        }
    }
    let mut st = app.lock();
    let st = &mut *st;
    let m = method.as_str();
    // What a change leaves in the Activity Feed needs the object as it was.
    let before = (m != "GET")
        .then(|| before_change(st, m, &segs, now))
        .flatten();
    let result = route(st, m, &segs, q, body, beta, now);
    if let Ok(answer) = &result {
        if let Some((kind, fields)) = (m != "GET")
            .then(|| activity::of_change(m, &segs, before.as_ref(), answer))
            .flatten()
        {
            activity::append(st, now, caller.admin_actor(), kind, fields);
        }
    }
    result
}

/// The object a change is about, as it is before the change.
fn before_change(st: &OrgState, m: &str, segs: &[&str], now: DateTime<Utc>) -> Option<Value> {
    match (m, segs) {
        (_, ["users", id]) => st.user(id).map(user_json),
        (_, ["workspaces", id]) => st.workspace(id).map(workspace_json),
        (_, ["workspaces", id, "members", uid]) => get_member(st, id, uid).ok(),
        (_, ["api_keys", id]) => find_key(st, id).ok().map(|k| key_json(k, st, now)),
        ("DELETE", ["spend_limits", id]) => limits::get(st, id).ok(),
        _ => None,
    }
}

fn route(
    st: &mut OrgState,
    m: &str,
    segs: &[&str],
    q: &Query,
    body: &[u8],
    beta: &[String],
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    let not_found = || {
        ApiError::not_found(format!(
            "Not found: {m} /v1/organizations/{}",
            segs.join("/")
        ))
    };
    match (m, segs) {
        ("GET", ["me"]) => {
            Ok(json!({"id": st.org_id, "type": "organization", "name": st.org_name}))
        }

        ("GET", ["users"]) => list_users(st, q),
        ("GET", ["users", id]) => Ok(user_json(find_user(st, id)?)),
        ("POST", ["users", id]) => update_user(st, id, body),
        ("DELETE", ["users", id]) => delete_user(st, id),

        ("GET", ["invites"]) => list_invites(st, q, now),
        ("POST", ["invites"]) => create_invite(st, body, now),
        ("GET", ["invites", id]) => Ok(invite_json(find_invite(st, id)?, now)),
        ("DELETE", ["invites", id]) => delete_invite(st, id, now),

        ("GET", ["workspaces"]) => list_workspaces(st, q),
        ("POST", ["workspaces"]) => create_workspace(st, body, now),
        ("GET", ["workspaces", id]) => Ok(workspace_json(find_workspace(st, id)?)),
        ("POST", ["workspaces", id]) => update_workspace(st, id, body),
        ("POST", ["workspaces", id, "archive"]) => archive_workspace(st, id, now),
        ("GET", ["workspaces", id, "members"]) => list_members(st, id, q),
        ("POST", ["workspaces", id, "members"]) => add_member(st, id, body),
        ("GET", ["workspaces", id, "members", uid]) => get_member(st, id, uid),
        ("POST", ["workspaces", id, "members", uid]) => update_member(st, id, uid, body),
        ("DELETE", ["workspaces", id, "members", uid]) => remove_member(st, id, uid),
        ("GET", ["workspaces", id, "rate_limits"]) => {
            find_workspace(st, id)?;
            usage::workspace_rate_limits(st, id, q)
        }

        ("GET", ["api_keys"]) => list_keys(st, q, now),
        ("GET", ["api_keys", id]) => Ok(key_json(find_key(st, id)?, st, now)),
        ("POST", ["api_keys", id]) => update_key(st, id, body, now),

        ("POST", ["workspaces", id, "rate_limits", rid]) => {
            let map = http::body(body, &["limits"])?;
            limits::update_workspace_rate_limit(st, id, rid, &map)
        }

        ("GET", ["spend_limits"]) => limits::list(st, q, beta),
        ("POST", ["spend_limits"]) => {
            let map = http::body(body, &["amount", "scope", "period"])?;
            limits::set(st, &map, now)
        }
        ("GET", ["spend_limits", "effective"]) => limits::effective(),
        ("GET", ["spend_limits", id]) => limits::get(st, id),
        ("DELETE", ["spend_limits", id]) => limits::delete(st, id),

        ("GET", ["usage_report", "claude_code"]) => usage::claude_code_report(st, q, now),
        ("GET", ["rate_limits"]) => usage::org_rate_limits(st, q),
        _ => Err(not_found()),
    }
}

// ---------------------------------------------------------------------------------------------
// Users

fn user_json(u: &User) -> Value {
    json!({
        "type": "user",
        "id": u.id,
        "email": u.email,
        "name": u.name,
        "role": u.role.as_str(),
        "added_at": ts(u.added_at),
    })
}

fn find_user<'a>(st: &'a OrgState, id: &str) -> ApiResult<&'a User> {
    st.user(id)
        .ok_or_else(|| ApiError::not_found(format!("User not found: {id}")))
}

fn normalize_email(e: &str) -> String {
    e.trim().to_lowercase()
}

fn list_users(st: &OrgState, q: &Query) -> ApiResult<Value> {
    let roles = q.enum_all("roles", ORG_ROLES)?;
    let email = q.get("email").map(normalize_email);
    let items: Vec<&User> = st
        .users
        .iter()
        .filter(|u| {
            email
                .as_ref()
                .is_none_or(|e| normalize_email(&u.email) == *e)
        })
        .filter(|u| roles.is_empty() || roles.iter().any(|r| r == u.role.as_str()))
        .collect();
    id_page(
        q,
        items,
        |u| u.seq,
        |u| u.id.clone(),
        |id| {
            st.user(id)
                .map(|u| u.seq)
                .or_else(|| st.tombstones.get(id).copied())
        },
        |u| user_json(u),
    )
}

/// Validates a role for update/invite: enum first, then the API's assignable subset.
fn assignable_role(raw: &str) -> ApiResult<OrgRole> {
    if !ORG_ROLES.contains(&raw) {
        return Err(bad_enum("role", raw, ASSIGNABLE_ROLES));
    }
    if raw == "admin" {
        return Err(ApiError::invalid(
            "role: The admin role cannot be assigned through the API",
        ));
    }
    if ENTERPRISE_ROLES.contains(&raw) {
        return Err(ApiError::invalid(format!(
            "role: '{raw}' is only available in Claude Enterprise organizations"
        )));
    }
    OrgRole::parse(raw).ok_or_else(|| bad_enum("role", raw, ASSIGNABLE_ROLES))
}

fn update_user(st: &mut OrgState, id: &str, body: &[u8]) -> ApiResult<Value> {
    let map = http::body(body, &["role"])?;
    let role = assignable_role(http::required(&map, "role")?)?;
    let user = find_user(st, id)?;
    if user.role == OrgRole::Admin {
        return Err(ApiError::invalid(
            "The role of an organization admin cannot be changed through the API",
        ));
    }
    let user = st
        .users
        .iter_mut()
        .find(|u| u.id == id)
        .ok_or_else(|| ApiError::not_found(format!("User not found: {id}")))?;
    user.role = role;
    Ok(user_json(user))
}

fn delete_user(st: &mut OrgState, id: &str) -> ApiResult<Value> {
    let user = find_user(st, id)?;
    if user.role == OrgRole::Admin {
        return Err(ApiError::invalid(
            "Organization admins cannot be removed through the API",
        ));
    }
    if st.users.len() == 1 {
        return Err(
            ApiError::invalid("Cannot remove the organization's only member")
                .with_code("cannot_remove_last_member"),
        );
    }
    let user = user.clone();
    remove_user(st, &user);
    Ok(json!({"id": id, "type": "user_deleted"}))
}

/// Takes a member out of the organization, however that was asked for.
pub(crate) fn remove_user(st: &mut OrgState, user: &User) {
    let id = user.id.as_str();
    // Personal keys act as their user: they are archived when the user leaves (§5.6).
    for k in st.api_keys.iter_mut() {
        if matches!(&k.principal, Some(Principal::User(u)) if u == id) {
            k.status = KeyStatus::Archived;
        }
    }
    st.users.retain(|u| u.id != id);
    st.memberships.remove_user(id);
    st.tombstones.insert(id.to_string(), user.seq);
}

// ---------------------------------------------------------------------------------------------
// Invites

fn invite_json(i: &Invite, now: DateTime<Utc>) -> Value {
    json!({
        "type": "invite",
        "id": i.id,
        "email": i.email,
        "role": i.role.as_str(),
        "status": i.status(now),
        "invited_at": ts(i.invited_at),
        "expires_at": ts(i.expires_at()),
        "accepted_at": i.accepted_at.map(ts),
        "rbac_group_ids": [],
    })
}

fn find_invite<'a>(st: &'a OrgState, id: &str) -> ApiResult<&'a Invite> {
    st.invites
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::not_found(format!("Invite not found: {id}")))
}

fn list_invites(st: &OrgState, q: &Query, now: DateTime<Utc>) -> ApiResult<Value> {
    let statuses = q.enum_all("statuses", &["pending", "accepted", "expired"])?;
    let roles = q.enum_all("roles", ORG_ROLES)?;
    let email = q.get("email").map(normalize_email);
    let items: Vec<&Invite> = st
        .invites
        .iter()
        .filter(|i| !i.deleted)
        .filter(|i| statuses.is_empty() || statuses.iter().any(|s| s == i.status(now)))
        .filter(|i| roles.is_empty() || roles.iter().any(|r| r == i.role.as_str()))
        .filter(|i| {
            email
                .as_ref()
                .is_none_or(|e| normalize_email(&i.email) == *e)
        })
        .collect();
    id_page(
        q,
        items,
        |i| i.seq,
        |i| i.id.clone(),
        |id| st.invites.iter().find(|i| i.id == id).map(|i| i.seq),
        |i| invite_json(i, now),
    )
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace())
        && !domain.contains('@')
}

fn create_invite(st: &mut OrgState, body: &[u8], now: DateTime<Utc>) -> ApiResult<Value> {
    let map = http::body(body, &["email", "role", "rbac_group_ids"])?;
    let email = http::required(&map, "email")?.trim().to_string();
    if !valid_email(&email) {
        return Err(ApiError::invalid(format!(
            "email: '{email}' is not a valid email address"
        )));
    }
    let role = assignable_role(http::required(&map, "role")?)?;
    match map.get("rbac_group_ids") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid(
                "rbac_group_ids: RBAC groups are only available in Claude Enterprise organizations",
            ))
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "rbac_group_ids: Input should be a valid list",
            ))
        }
    }
    let norm = normalize_email(&email);
    if let Some(u) = st.users.iter().find(|u| normalize_email(&u.email) == norm) {
        return Err(ApiError::invalid(format!(
            "{email} is already a member of the organization ({})",
            u.id
        ))
        .with_code("already_member"));
    }
    if let Some(i) = st
        .invites
        .iter()
        .find(|i| normalize_email(&i.email) == norm && i.status(now) == "pending")
    {
        return Err(ApiError::invalid(format!(
            "A pending invite already exists for {email} ({})",
            i.id
        ))
        .with_code("invite_already_exists"));
    }
    let seq = st.seq();
    let id = st.new_id("invite");
    let invite = Invite {
        seq,
        id,
        email,
        role,
        invited_at: now,
        accepted_at: None,
        deleted: false,
    };
    let out = invite_json(&invite, now);
    st.invites.push(invite);
    Ok(out)
}

fn delete_invite(st: &mut OrgState, id: &str, now: DateTime<Utc>) -> ApiResult<Value> {
    let status = find_invite(st, id)?.status(now);
    if status != "pending" {
        return Err(ApiError::invalid(format!(
            "Only pending invites can be deleted; this invite is {status}"
        )));
    }
    if let Some(i) = st.invites.iter_mut().find(|i| i.id == id) {
        i.deleted = true;
    }
    Ok(json!({"id": id, "type": "invite_deleted"}))
}

// ---------------------------------------------------------------------------------------------
// Workspaces

fn workspace_json(w: &Workspace) -> Value {
    json!({
        "type": "workspace",
        "id": w.id,
        "name": w.name,
        "display_color": w.display_color,
        "created_at": ts(w.created_at),
        "archived_at": w.archived_at.map(ts),
        "compartment_id": w.compartment_id,
        "data_residency": {
            "workspace_geo": "us",
            "allowed_inference_geos": match &w.data_residency.allowed_inference_geos {
                None => json!("unrestricted"),
                Some(g) => json!(g),
            },
            "default_inference_geo": w.data_residency.default_inference_geo,
        },
        "tags": w.tags,
        "external_key_id": null,
        "user_profile_id": null,
    })
}

fn find_workspace<'a>(st: &'a OrgState, id: &str) -> ApiResult<&'a Workspace> {
    st.workspace(id)
        .ok_or_else(|| ApiError::not_found(format!("Workspace not found: {id}")))
}

fn list_workspaces(st: &OrgState, q: &Query) -> ApiResult<Value> {
    let include_archived = q.bool("include_archived", false)?;
    let include_default = q.bool("include_default", false)?;
    let ids = q.all("ids");
    if ids.len() > 100 {
        return Err(ApiError::invalid("ids: at most 100 ids may be given"));
    }
    let items: Vec<&Workspace> = st
        .workspaces
        .iter()
        .filter(|w| include_archived || w.archived_at.is_none())
        .filter(|w| include_default || !w.is_default)
        .filter(|w| ids.is_empty() || ids.contains(&w.id))
        .collect();
    id_page(
        q,
        items,
        |w| w.seq,
        |w| w.id.clone(),
        |id| st.workspace(id).map(|w| w.seq),
        |w| workspace_json(w),
    )
}

fn valid_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit())
}

fn check_name(name: &str) -> ApiResult<()> {
    let n = name.chars().count();
    if n == 0 || name.trim().is_empty() {
        return Err(ApiError::invalid(
            "name: String should have at least 1 character",
        ));
    }
    if n > 255 {
        return Err(ApiError::invalid(
            "name: String should have at most 255 characters",
        ));
    }
    Ok(())
}

fn check_color(map: &Map<String, Value>) -> ApiResult<Option<String>> {
    match http::text(map, "display_color")? {
        None => Ok(None),
        Some(c) if valid_color(c) => Ok(Some(c.to_string())),
        Some(c) => Err(ApiError::invalid(format!(
            "display_color: String should match pattern '^#[0-9A-Fa-f]{{6}}$'; got '{c}'"
        ))),
    }
}

fn apply_tags(
    tags: &mut std::collections::BTreeMap<String, String>,
    v: Option<&Value>,
) -> ApiResult<()> {
    let Some(v) = v else { return Ok(()) };
    let obj = match v {
        Value::Null => return Ok(()),
        Value::Object(o) => o,
        _ => {
            return Err(ApiError::invalid(
                "tags: Input should be a valid dictionary",
            ))
        }
    };
    for (k, val) in obj {
        if k.to_lowercase().starts_with("anthropic") {
            return Err(ApiError::invalid(format!(
                "tags: key '{k}' may not begin with 'anthropic'"
            )));
        }
        match val {
            Value::String(s) => {
                tags.insert(k.clone(), s.clone());
            }
            Value::Null => {
                tags.remove(k);
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "tags.{k}: Input should be a valid string"
                )))
            }
        }
    }
    Ok(())
}

fn apply_residency(w: &mut Workspace, v: Option<&Value>, create: bool) -> ApiResult<()> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(ApiError::invalid(
                "data_residency: Input should be an object",
            ))
        }
    };
    for k in obj.keys() {
        match k.as_str() {
            "allowed_inference_geos" | "default_inference_geo" => {}
            "workspace_geo" if create => {}
            "workspace_geo" => {
                return Err(ApiError::invalid(
                    "data_residency.workspace_geo: immutable after creation",
                ))
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "data_residency.{other}: Extra inputs are not permitted"
                )))
            }
        }
    }
    if let Some(g) = obj.get("workspace_geo") {
        if g != "us" {
            return Err(bad_enum(
                "data_residency.workspace_geo",
                &g.to_string(),
                &["us"],
            ));
        }
    }
    match obj.get("allowed_inference_geos") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "unrestricted" => {
            w.data_residency.allowed_inference_geos = None
        }
        Some(Value::Array(a)) => {
            let mut geos = Vec::new();
            for g in a {
                match g.as_str() {
                    Some(s @ ("global" | "us")) => geos.push(s.to_string()),
                    _ => {
                        return Err(bad_enum(
                            "data_residency.allowed_inference_geos",
                            &g.to_string(),
                            &["global", "us"],
                        ))
                    }
                }
            }
            w.data_residency.allowed_inference_geos = Some(geos);
        }
        Some(other) => {
            return Err(bad_enum(
                "data_residency.allowed_inference_geos",
                &other.to_string(),
                &["unrestricted"],
            ))
        }
    }
    match obj.get("default_inference_geo") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "global" || s == "us" => {
            w.data_residency.default_inference_geo = s.clone()
        }
        Some(other) => {
            return Err(bad_enum(
                "data_residency.default_inference_geo",
                &other.to_string(),
                &["global", "us"],
            ))
        }
    }
    Ok(())
}

fn reject_cmek(map: &Map<String, Value>) -> ApiResult<()> {
    for f in ["external_key_id", "user_profile_id"] {
        if http::text(map, f)?.is_some() {
            return Err(ApiError::invalid(format!(
                "{f}: customer-managed encryption keys are not enabled for this organization"
            )));
        }
    }
    Ok(())
}

fn create_workspace(st: &mut OrgState, body: &[u8], now: DateTime<Utc>) -> ApiResult<Value> {
    let map = http::body(body, http::WORKSPACE_FIELDS)?;
    let name = http::required(&map, "name")?.to_string();
    check_name(&name)?;
    let color = check_color(&map)?;
    reject_cmek(&map)?;
    let active = st
        .workspaces
        .iter()
        .filter(|w| !w.is_default && w.archived_at.is_none())
        .count();
    let max = st.max_active_workspaces;
    if active >= max {
        return Err(ApiError::invalid(format!(
            "The organization already has the maximum of {max} active workspaces; archive one first"
        )));
    }
    let seq = st.seq();
    let id = st.new_id("wrkspc");
    let compartment_id = st.new_id("cmpt");
    let mut w = Workspace {
        seq,
        id,
        name,
        display_color: color.unwrap_or_else(|| "#6C5BB9".to_string()),
        created_at: now,
        archived_at: None,
        is_default: false,
        compartment_id,
        data_residency: super::state::DataResidency {
            allowed_inference_geos: None,
            default_inference_geo: "global".into(),
        },
        tags: Default::default(),
    };
    apply_tags(&mut w.tags, map.get("tags"))?;
    apply_residency(&mut w, map.get("data_residency"), true)?;
    let out = workspace_json(&w);
    st.workspaces.push(w);
    Ok(out)
}

fn update_workspace(st: &mut OrgState, id: &str, body: &[u8]) -> ApiResult<Value> {
    let map = http::body(body, http::WORKSPACE_FIELDS)?;
    let w = find_workspace(st, id)?;
    if w.archived_at.is_some() {
        return Err(ApiError::invalid("Archived workspaces cannot be modified"));
    }
    let name = http::text(&map, "name")?.map(str::to_string);
    if let Some(n) = &name {
        check_name(n)?;
        if w.is_default {
            return Err(ApiError::invalid("The default workspace cannot be renamed"));
        }
    }
    let color = check_color(&map)?;
    reject_cmek(&map)?;
    let mut updated = w.clone();
    if let Some(n) = name {
        updated.name = n;
    }
    if let Some(c) = color {
        updated.display_color = c;
    }
    apply_tags(&mut updated.tags, map.get("tags"))?;
    apply_residency(&mut updated, map.get("data_residency"), false)?;
    let out = workspace_json(&updated);
    if let Some(slot) = st.workspaces.iter_mut().find(|w| w.id == id) {
        *slot = updated;
    }
    Ok(out)
}

/// Archiving also archives the workspace's API keys (as the Console does).
fn archive_workspace(st: &mut OrgState, id: &str, now: DateTime<Utc>) -> ApiResult<Value> {
    let w = find_workspace(st, id)?;
    if w.is_default {
        return Err(ApiError::invalid(
            "The default workspace cannot be archived",
        ));
    }
    if w.archived_at.is_some() {
        return Err(ApiError::invalid("The workspace is already archived"));
    }
    for k in st.api_keys.iter_mut() {
        if k.workspace_id.as_deref() == Some(id) {
            k.status = KeyStatus::Archived;
        }
    }
    let w = st
        .workspaces
        .iter_mut()
        .find(|w| w.id == id)
        .ok_or_else(|| ApiError::not_found(format!("Workspace not found: {id}")))?;
    w.archived_at = Some(now);
    Ok(workspace_json(w))
}

// ---------------------------------------------------------------------------------------------
// Workspace members

fn member_json(workspace_id: &str, user_id: &str, role: WorkspaceRole) -> Value {
    json!({
        "type": "workspace_member",
        "user_id": user_id,
        "workspace_id": workspace_id,
        "workspace_role": role.as_str(),
    })
}

fn list_members(st: &OrgState, ws: &str, q: &Query) -> ApiResult<Value> {
    find_workspace(st, ws)?;
    let items: Vec<(&User, WorkspaceRole)> = st
        .users
        .iter()
        .filter_map(|u| st.effective_role(ws, u).map(|r| (u, r)))
        .collect();
    id_page(
        q,
        items,
        |(u, _)| u.seq,
        |(u, _)| u.id.clone(),
        |id| {
            st.user(id)
                .map(|u| u.seq)
                .or_else(|| st.tombstones.get(id).copied())
        },
        |(u, r)| member_json(ws, &u.id, *r),
    )
}

fn find_member<'a>(st: &'a OrgState, ws: &str, uid: &str) -> ApiResult<(&'a User, WorkspaceRole)> {
    find_workspace(st, ws)?;
    let user = find_user(st, uid)?;
    let role = st.effective_role(ws, user).ok_or_else(|| {
        ApiError::not_found(format!("User {uid} is not a member of workspace {ws}"))
    })?;
    Ok((user, role))
}

fn get_member(st: &OrgState, ws: &str, uid: &str) -> ApiResult<Value> {
    let (user, role) = find_member(st, ws, uid)?;
    Ok(member_json(ws, &user.id, role))
}

fn workspace_role_field(map: &Map<String, Value>) -> ApiResult<WorkspaceRole> {
    let raw = http::required(map, "workspace_role")?;
    let role = WorkspaceRole::parse(raw)
        .ok_or_else(|| bad_enum("workspace_role", raw, WORKSPACE_ROLES))?;
    if role == WorkspaceRole::Billing {
        return Err(ApiError::invalid(
            "workspace_role: workspace_billing cannot be assigned; it is inherited from the organization billing role",
        ));
    }
    Ok(role)
}

fn check_workspace_writable(st: &OrgState, ws: &str) -> ApiResult<()> {
    if find_workspace(st, ws)?.archived_at.is_some() {
        return Err(ApiError::invalid("Archived workspaces cannot be modified"));
    }
    Ok(())
}

/// The §5.5 rules for changing an org admin/billing member's workspace role.
fn check_privileged(user: &User, role: Option<WorkspaceRole>) -> ApiResult<()> {
    match user.role {
        OrgRole::Admin => Err(ApiError::invalid(
            "Organization admins are workspace admins of every workspace; their workspace role cannot be changed",
        )),
        OrgRole::Billing if role != Some(WorkspaceRole::Admin) => Err(ApiError::invalid(
            "Organization billing members hold workspace_billing in every workspace; they can only be upgraded to workspace_admin",
        )),
        _ => Ok(()),
    }
}

fn add_member(st: &mut OrgState, ws: &str, body: &[u8]) -> ApiResult<Value> {
    let map = http::body(body, &["user_id", "workspace_role"])?;
    let uid = http::required(&map, "user_id")?.to_string();
    let role = workspace_role_field(&map)?;
    check_workspace_writable(st, ws)?;
    let user = find_user(st, &uid)?;
    check_privileged(user, Some(role))?;
    let explicit = st.memberships.get(ws, &uid);
    if explicit.is_some()
        || (user.role != OrgRole::Billing && st.effective_role(ws, user).is_some())
    {
        return Err(ApiError::invalid(format!(
            "User {uid} is already a member of workspace {ws}"
        )));
    }
    st.memberships.insert(ws, &uid, role);
    Ok(member_json(ws, &uid, role))
}

fn update_member(st: &mut OrgState, ws: &str, uid: &str, body: &[u8]) -> ApiResult<Value> {
    let map = http::body(body, &["workspace_role"])?;
    let role = workspace_role_field(&map)?;
    check_workspace_writable(st, ws)?;
    let (user, _) = find_member(st, ws, uid)?;
    check_privileged(user, Some(role))?;
    st.memberships.insert(ws, uid, role);
    Ok(member_json(ws, uid, role))
}

fn remove_member(st: &mut OrgState, ws: &str, uid: &str) -> ApiResult<Value> {
    check_workspace_writable(st, ws)?;
    let (user, _) = find_member(st, ws, uid)?;
    if matches!(user.role, OrgRole::Admin | OrgRole::Billing) {
        return Err(ApiError::invalid(format!(
            "Organization {} members cannot be removed from workspaces",
            user.role.as_str()
        )));
    }
    st.memberships.remove(ws, uid);
    Ok(json!({"type": "workspace_member_deleted", "user_id": uid, "workspace_id": ws}))
}

// ---------------------------------------------------------------------------------------------
// API keys

fn key_json(k: &ApiKey, st: &OrgState, now: DateTime<Utc>) -> Value {
    let scope = match &k.workspace_id {
        Some(w) => json!({"type": "workspace", "workspace_id": w}),
        None => json!({"type": "organization"}),
    };
    let legacy_ws = k
        .workspace_id
        .as_deref()
        .filter(|w| *w != st.default_workspace_id());
    json!({
        "type": "api_key",
        "id": k.id,
        "name": k.name,
        "status": k.status(now),
        "created_at": ts(k.created_at),
        "created_by": k.created_by.as_ref().map(|id| {
            let kind = if id.starts_with("svac_") { "service_account" } else { "user" };
            json!({"id": id, "type": kind})
        }),
        "expires_at": k.expires_at.map(ts),
        "partial_key_hint": k.partial_key_hint,
        "principal": k.principal.as_ref().map(|p| match p {
            Principal::User(id) => json!({"type": "user_actor", "user_id": id}),
            Principal::ServiceAccount(id) => {
                json!({"type": "service_account_actor", "service_account_id": id})
            }
        }),
        "scope": scope,
        "workspace_id": legacy_ws,
    })
}

fn find_key<'a>(st: &'a OrgState, id: &str) -> ApiResult<&'a ApiKey> {
    st.api_keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::not_found(format!("API key not found: {id}")))
}

fn list_keys(st: &OrgState, q: &Query, now: DateTime<Utc>) -> ApiResult<Value> {
    let status = q.get("status");
    if let Some(s) = status {
        if !KEY_STATUSES.contains(&s) {
            return Err(bad_enum("status", s, KEY_STATUSES));
        }
    }
    let ws = q.get("workspace_id");
    let creator = q.get("created_by_user_id");
    let items: Vec<&ApiKey> = st
        .api_keys
        .iter()
        .filter(|k| status.is_none_or(|s| k.status(now) == s))
        .filter(|k| ws.is_none_or(|w| k.workspace_id.as_deref() == Some(w)))
        .filter(|k| creator.is_none_or(|c| k.created_by.as_deref() == Some(c)))
        .collect();
    id_page(
        q,
        items,
        |k| k.seq,
        |k| k.id.clone(),
        |id| st.api_keys.iter().find(|k| k.id == id).map(|k| k.seq),
        |k| key_json(k, st, now),
    )
}

fn update_key(st: &mut OrgState, id: &str, body: &[u8], now: DateTime<Utc>) -> ApiResult<Value> {
    let map = http::body(body, &["name", "status"])?;
    let name = http::text(&map, "name")?.map(str::to_string);
    if let Some(n) = &name {
        if n.trim().is_empty() {
            return Err(ApiError::invalid(
                "name: String should have at least 1 character",
            ));
        }
        if n.chars().count() > 500 {
            return Err(ApiError::invalid(
                "name: String should have at most 500 characters",
            ));
        }
    }
    let status = match http::text(&map, "status")? {
        None => None,
        Some("active") => Some(KeyStatus::Active),
        Some("inactive") => Some(KeyStatus::Inactive),
        Some("archived") => Some(KeyStatus::Archived),
        Some("expired") => {
            return Err(ApiError::invalid(
                "status: 'expired' cannot be set; a key expires at its expires_at",
            ))
        }
        Some(other) => {
            return Err(bad_enum(
                "status",
                other,
                &["active", "inactive", "archived"],
            ))
        }
    };
    let key = find_key(st, id)?;
    let current = key.status(now);
    if let Some(s) = status {
        if current == "archived" && s != KeyStatus::Archived {
            return Err(ApiError::invalid("Archived API keys cannot be reactivated"));
        }
        if current == "expired" && s != KeyStatus::Archived {
            return Err(ApiError::invalid("Expired API keys can only be archived"));
        }
    }
    let key = st
        .api_keys
        .iter_mut()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::not_found(format!("API key not found: {id}")))?;
    if let Some(n) = name {
        key.name = n;
    }
    if let Some(s) = status {
        key.status = s;
    }
    let key = key.clone();
    Ok(key_json(&key, st, now))
}
