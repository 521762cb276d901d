//! The Admin API, served by Orgkeeper to scripts with an Orgkeeper token (`x-api-key` or
//! `Authorization: Bearer`), with Anthropic's HTTP contract (`shared/admin-api.md`: shapes,
//! pagination, errors), so `anthropic.Anthropic(api_key=TOKEN, base_url=ORGKEEPER)` works
//! unchanged and nothing but Orgkeeper holds the admin key.
//!
//! Like web/, this only translates HTTP: reads come from the organization model and the usage
//! store (no upstream call), changes go through the same service functions as the pages, as
//! the token's account. What a token may not see answers 404 (its existence is not revealed);
//! what it may see but not change answers 403.

mod directory;
mod limits;
mod reports;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::Rng;
use serde_json::Value;

use crate::auth::tokens::TokenKind;
use crate::auth::Permission;
use crate::contract::{body, credential, required, text, ApiError, ApiResult, Query};
use crate::service::tokens::Rejection;
use crate::service::{Caller, ServiceError, Services};
use crate::web::context::ClientInfo;
use crate::web::AppState;

/// The largest body any Admin API request has (a workspace or an invite).
const MAX_BODY: usize = 64 * 1024;

/// The routes under `/v1/organizations`, with their own layers: no session, no CSRF (a token
/// is not sent by a browser on its own), answers in the Admin API's envelope.
pub fn router(state: &AppState) -> Router<AppState> {
    let o = |path: &str| format!("/v1/organizations{path}");
    Router::new()
        .route(&o("/me"), get(directory::me))
        .route(&o("/users"), get(directory::list_users))
        .route(
            &o("/users/{id}"),
            get(directory::get_user)
                .post(directory::update_user)
                .delete(directory::remove_user),
        )
        .route(
            &o("/invites"),
            get(directory::list_invites).post(directory::create_invite),
        )
        .route(
            &o("/invites/{id}"),
            get(directory::get_invite).delete(directory::delete_invite),
        )
        .route(
            &o("/workspaces"),
            get(directory::list_workspaces).post(directory::create_workspace),
        )
        .route(
            &o("/workspaces/{id}"),
            get(directory::get_workspace).post(directory::update_workspace),
        )
        .route(
            &o("/workspaces/{id}/archive"),
            post(directory::archive_workspace),
        )
        .route(
            &o("/workspaces/{id}/members"),
            get(directory::list_members).post(directory::add_member),
        )
        .route(
            &o("/workspaces/{id}/members/{user_id}"),
            get(directory::get_member)
                .post(directory::update_member)
                .delete(directory::remove_member),
        )
        .route(&o("/api_keys"), get(directory::list_keys))
        .route(
            &o("/api_keys/{id}"),
            get(directory::get_key).post(directory::update_key),
        )
        .route(&o("/rate_limits"), get(limits::org_rate_limits))
        .route(
            &o("/workspaces/{id}/rate_limits"),
            get(limits::workspace_rate_limits),
        )
        .route(
            &o("/workspaces/{id}/rate_limits/{rate_limit_id}"),
            post(limits::update_workspace_rate_limit),
        )
        .route(
            &o("/spend_limits"),
            get(limits::list_spend_limits).post(limits::set_spend_limit),
        )
        .route(&o("/spend_limits/effective"), get(limits::effective))
        .route(
            &o("/spend_limits/{id}"),
            get(limits::get_spend_limit).delete(limits::delete_spend_limit),
        )
        .route(&o("/usage_report/messages"), get(reports::usage))
        .route(&o("/cost_report"), get(reports::cost))
        .route("/v1/{*rest}", axum::routing::any(not_found))
        .method_not_allowed_fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), one_deadline))
        .layer(middleware::from_fn(request_id))
}

/// The request id of this request (`req_…`), answered in the `request-id` header and in every
/// error body.
#[derive(Clone)]
struct RequestId(String);

async fn request_id(mut request: Request, next: Next) -> Response {
    let id = format!("req_orgk_{:024x}", rand::thread_rng().gen::<u128>() >> 32);
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// Writes wait on Anthropic at most the configured deadline in all, as a page does.
async fn one_deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    crate::anthropic::within(state.config.api_deadline, next.run(request)).await
}

/// An answer in the Admin API's shape: the object, or the error envelope with the request id.
pub struct Reply {
    request_id: String,
    result: ApiResult<Body>,
}

/// What a successful answer carries.
enum Body {
    Value(Value),
    /// Already written: a list's page is serialised straight from the model, not built as
    /// JSON values first (a page holds up to 1,000 objects).
    Written(Written),
}

/// JSON written from the model.
pub(crate) struct Written(String);

impl Written {
    pub(crate) fn of(value: &impl serde::Serialize) -> ApiResult<Written> {
        serde_json::to_string(value).map(Written).map_err(internal)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self.result {
            Ok(Body::Value(value)) => (StatusCode::OK, axum::Json(value)).into_response(),
            Ok(Body::Written(Written(json))) => (
                StatusCode::OK,
                [(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json,
            )
                .into_response(),
            Err(error) => refusal(&error, &self.request_id),
        }
    }
}

fn refusal(error: &ApiError, request_id: &str) -> Response {
    let mut response = (error.status, axum::Json(error.body(request_id))).into_response();
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(seconds));
    }
    response
}

async fn not_found(request: Request) -> Response {
    let id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let error = ApiError::not_found(format!(
        "Not found: {} {}",
        request.method(),
        request.uri().path()
    ));
    refusal(&error, &id)
}

/// The caller a request's token stands for, with what a handler needs: every handler takes
/// one, so no route answers without a valid token.
pub struct Door {
    pub caller: Caller,
    pub services: Services,
    request_id: String,
}

impl Door {
    /// Wraps a handler's result in the reply.
    fn reply(&self, result: ApiResult<Value>) -> Reply {
        Reply {
            request_id: self.request_id.clone(),
            result: result.map(Body::Value),
        }
    }

    /// Wraps a handler's already written answer in the reply.
    fn reply_written(&self, result: ApiResult<Written>) -> Reply {
        Reply {
            request_id: self.request_id.clone(),
            result: result.map(Body::Written),
        }
    }

    /// Checks a permission (a refusal is audited) and answers 403 when it is missing.
    async fn require(&self, permission: Permission) -> ApiResult<()> {
        self.services
            .require(&self.caller, permission, None)
            .await
            .map_err(|e| from_service(e, &self.caller))
    }
}

impl FromRequestParts<AppState> for Door {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let client = ClientInfo::from_parts(parts, state.config.trust_proxy);
        let source = crate::audit::Source {
            ip: Some(client.ip),
            user_agent: client.user_agent,
        };
        let services = state.services.clone();
        let presented = credential(&parts.headers);
        let caller = match crate::service::tokens::authenticate(
            &services,
            presented,
            TokenKind::Api,
            &source,
        )
        .await
        {
            Ok(Ok(caller)) => caller,
            Ok(Err(rejection)) => return Err(refusal(&rejected(rejection), &request_id)),
            Err(error) => return Err(refusal(&from_service(error, &Caller::BUDGETS), &request_id)),
        };
        if let Caller::Token { token, .. } = &caller {
            let now = services.clock.now();
            if let Err(wait) =
                services
                    .token_rate
                    .admit(token.id, services.config.token_rate_limit, now)
            {
                let mut error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    format!(
                        "This token made more than {} requests this minute; try again in {wait} seconds.",
                        services.config.token_rate_limit
                    ),
                );
                error.retry_after = Some(wait);
                return Err(refusal(&error, &request_id));
            }
        }
        Ok(Door {
            caller,
            services,
            request_id,
        })
    }
}

/// 401 `authentication_error`, as Anthropic answers a missing, revoked or expired key.
fn rejected(rejection: Rejection) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        rejection.message(),
    )
}

/// A refusal of the service layer in the Admin API's words.
fn from_service(error: ServiceError, caller: &Caller) -> ApiError {
    match error {
        ServiceError::Forbidden => {
            let read_only = matches!(caller, Caller::Token { token, .. } if token.read_only);
            ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                if read_only {
                    "This token is read-only."
                } else {
                    "This token's account may not do that."
                },
            )
        }
        ServiceError::Invalid(message) => ApiError::invalid(message),
        ServiceError::NotFound => ApiError::not_found("The requested resource could not be found."),
        ServiceError::Conflict(message) => {
            ApiError::new(StatusCode::CONFLICT, "conflict_error", message)
        }
        ServiceError::Unread(error) => upstream(&error),
        ServiceError::Audit(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "Orgkeeper could not write its audit log, so nothing was changed. Try again later.",
        ),
        ServiceError::Database(e) => internal(e),
        ServiceError::Internal(e) => internal(e),
    }
}

/// 500 `api_error`: what went wrong goes to the log, not to the caller.
fn internal(error: impl std::fmt::Display) -> ApiError {
    tracing::error!(%error, "Orgkeeper's Admin API could not answer");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "api_error",
        "Internal server error",
    )
}

/// Anthropic's own refusal or failure, passed on with its status, type and request id; the
/// model not read yet answers 503.
fn upstream(error: &crate::anthropic::ApiError) -> ApiError {
    let message = match error.request_id() {
        Some(id) => format!("{} (Anthropic request id {id})", error.message()),
        None => error.user_message(),
    };
    match (error.status(), error.error_type()) {
        (Some(status), Some(kind)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            ApiError::new(status, known_type(kind), message)
        }
        _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "api_error", message),
    }
}

/// The Admin API's error types; anything else is passed on as `api_error`.
fn known_type(kind: &str) -> &'static str {
    [
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "conflict_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    ]
    .into_iter()
    .find(|k| *k == kind)
    .unwrap_or("api_error")
}

/// The outcome of a change through the service layer, as the Admin API answers it.
fn changed<T: serde::Serialize>(
    result: crate::service::Change<T>,
    caller: &Caller,
) -> ApiResult<Value> {
    match result {
        Ok(Ok(value)) => Ok(to_json(&value)),
        Ok(Err(error)) => Err(upstream(&error)),
        Err(error) => Err(from_service(error, caller)),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The query string, parsed as the Admin API reads it.
fn query(parts: &axum::http::Uri) -> Query {
    Query::parse(parts.query())
}

/// What a caller outside an object's workspaces gets: the same 404 as for no object at all.
fn hidden(id: &str) -> ApiError {
    ApiError::not_found(format!("Object not found: {id}"))
}

/// The model, or 503 until Orgkeeper has read the organization once.
fn model(door: &Door) -> ApiResult<std::sync::Arc<crate::org::Snapshot>> {
    door.services.org.synced().map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            e.user_message(),
        )
    })
}
