//! SCIM 2.0 provisioning (RFC 7643, 7644) at `/scim/v2`, for identity providers with a SCIM
//! token. Like web/ and api/, this only translates HTTP: every change is a function of
//! `service::scim`, which makes the organization's changes through the same service functions
//! as the pages.

mod discovery;
mod filter;
mod resources;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::auth::tokens::TokenKind;
use crate::service::scim::store::Lookup;
use crate::service::scim::{self, LoggedRequest, ScimError, ScimUser};
use crate::service::{Caller, ServiceError, Services};
use crate::web::context::ClientInfo;
use crate::web::AppState;

/// A group with every member of a large directory fits.
const MAX_BODY: usize = 4 * 1024 * 1024;
const ROOT: &str = "/scim/v2";

pub fn router(state: &AppState) -> Router<AppState> {
    let p = |path: &str| format!("{ROOT}{path}");
    Router::new()
        .route(
            &p("/ServiceProviderConfig"),
            get(config).fallback(not_allowed),
        )
        .route(
            &p("/ResourceTypes"),
            get(resource_types).fallback(not_allowed),
        )
        .route(
            &p("/ResourceTypes/{id}"),
            get(resource_type).fallback(not_allowed),
        )
        .route(&p("/Schemas"), get(schemas).fallback(not_allowed))
        .route(&p("/Schemas/{id}"), get(schema).fallback(not_allowed))
        .route(
            &p("/Users"),
            get(list_users).post(create_user).fallback(not_allowed),
        )
        .route(
            &p("/Users/{id}"),
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user)
                .fallback(not_allowed),
        )
        .route(
            &p("/Groups"),
            get(list_groups).post(create_group).fallback(not_allowed),
        )
        .route(
            &p("/Groups/{id}"),
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group)
                .fallback(not_allowed),
        )
        .route(ROOT, axum::routing::any(not_found))
        .route(&p("/{*rest}"), axum::routing::any(not_found))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), logged))
}

/// A refusal in SCIM's error shape (RFC 7644 §3.12).
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl Refusal {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Refusal {
        Refusal {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }

    pub fn invalid(scim_type: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }
}

impl From<ScimError> for Refusal {
    fn from(error: ScimError) -> Refusal {
        match error {
            ScimError::NotFound => Refusal::new(StatusCode::NOT_FOUND, "No such resource."),
            ScimError::Taken(detail) => Refusal {
                status: StatusCode::CONFLICT,
                scim_type: Some("uniqueness"),
                detail,
            },
            ScimError::Invalid { scim_type, detail } => Refusal::invalid(scim_type, detail),
            ScimError::Upstream { detail, refused } => Refusal::new(
                if refused {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::BAD_GATEWAY
                },
                detail,
            ),
            ScimError::Service(error) => error.into(),
        }
    }
}

impl From<ServiceError> for Refusal {
    fn from(error: ServiceError) -> Refusal {
        match error {
            ServiceError::Forbidden => {
                Refusal::new(StatusCode::FORBIDDEN, "This token may not do that.")
            }
            ServiceError::Invalid(detail) => Refusal::invalid("invalidValue", detail),
            ServiceError::NotFound => Refusal::new(StatusCode::NOT_FOUND, "No such resource."),
            ServiceError::Conflict(detail) => Refusal::new(StatusCode::CONFLICT, detail),
            ServiceError::Unread(error) => Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "Orgkeeper could not read the organization, so nothing was changed: {}",
                    error.user_message()
                ),
            ),
            ServiceError::Audit(_) => Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Orgkeeper could not write its audit log, so nothing was changed. Try again later.",
            ),
            ServiceError::Database(_) | ServiceError::Internal(_) => {
                Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
            }
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(kind) = self.scim_type {
            body["scimType"] = json!(kind);
        }
        let mut response = answer(self.status, body);
        response.extensions_mut().insert(Detail(self.detail));
        response
    }
}

/// What a refused request is logged with.
#[derive(Clone)]
struct Detail(String);

/// Who made a request, once its token was accepted.
#[derive(Clone)]
struct Client(String);

fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    response
}

type Reply = Result<Response, Refusal>;

/// Keeps each request for the SCIM page: when, by whom, what, and why it was refused.
async fn logged(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let client = response
        .extensions()
        .get::<Client>()
        .map_or_else(|| "(no valid token)".to_owned(), |c| c.0.clone());
    state.services.scim_log.push(LoggedRequest {
        at: state.services.clock.now(),
        client,
        method,
        path,
        status: response.status().as_u16(),
        detail: response.extensions().get::<Detail>().map(|d| d.0.clone()),
    });
    response
}

async fn not_found(request: Request) -> Response {
    Refusal::new(
        StatusCode::NOT_FOUND,
        format!("Not found: {} {}", request.method(), request.uri().path()),
    )
    .into_response()
}

async fn not_allowed(request: Request) -> Response {
    Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}

/// The identity provider behind a request's SCIM token; every handler takes one, so nothing
/// answers without a valid token.
pub struct Door {
    caller: Caller,
    services: Services,
    /// The address the provider uses for this service (for `meta.location`).
    base: String,
}

impl Door {
    /// Marks the response with the provider's name, for the log.
    fn done(&self, mut response: Response) -> Response {
        response.extensions_mut().insert(Client(self.caller.name()));
        response
    }

    fn reply(&self, reply: Reply) -> Response {
        let response = match reply {
            Ok(response) => response,
            Err(refusal) => refusal.into_response(),
        };
        self.done(response)
    }
}

impl FromRequestParts<AppState> for Door {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let client = ClientInfo::from_parts(parts, state.config.trust_proxy);
        let source = crate::audit::Source {
            ip: Some(client.ip),
            user_agent: client.user_agent,
        };
        let services = state.services.clone();
        let presented = crate::contract::bearer(&parts.headers);
        let caller = match crate::service::tokens::authenticate(
            &services,
            presented,
            TokenKind::Scim,
            &source,
        )
        .await
        {
            Ok(Ok(caller)) => caller,
            Ok(Err(rejection)) => {
                let mut response =
                    Refusal::new(StatusCode::UNAUTHORIZED, rejection.message()).into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"orgkeeper-scim\""),
                );
                return Err(response);
            }
            Err(error) => return Err(Refusal::from(error).into_response()),
        };
        let base = match &services.config.public_url {
            Some(url) => format!("{}{ROOT}", url.trim_end_matches('/')),
            None => {
                let host = parts
                    .headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("localhost");
                format!("http://{host}{ROOT}")
            }
        };
        Ok(Door {
            caller,
            services,
            base,
        })
    }
}

fn json_body(bytes: &Bytes) -> Result<Value, Refusal> {
    serde_json::from_slice(bytes)
        .map_err(|e| Refusal::invalid("invalidSyntax", format!("The body is not JSON: {e}")))
}

/// The query parameters of a list, read leniently as providers send them.
struct ListQuery {
    filter: Option<String>,
    start: usize,
    count: usize,
    attributes: Option<String>,
    excluded: Option<String>,
}

fn list_query(uri: &Uri) -> ListQuery {
    let mut q = ListQuery {
        filter: None,
        start: 1,
        count: 100,
        attributes: None,
        excluded: None,
    };
    for (key, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "filter" => q.filter = Some(value.into_owned()),
            "startIndex" => q.start = value.trim().parse::<usize>().unwrap_or(1).max(1),
            "count" => q.count = value.trim().parse::<usize>().unwrap_or(100),
            "attributes" => q.attributes = Some(value.into_owned()),
            "excludedAttributes" => q.excluded = Some(value.into_owned()),
            _ => {}
        }
    }
    q.count = q.count.min(discovery::MAX_RESULTS);
    q
}

/// One page of matching resources as a ListResponse.
fn page(q: &ListQuery, matching: Vec<Value>) -> Response {
    let total = matching.len();
    let resources: Vec<Value> = matching
        .into_iter()
        .skip(q.start - 1)
        .take(q.count)
        .map(|r| resources::project(r, q.attributes.as_deref(), q.excluded.as_deref()))
        .collect();
    answer(StatusCode::OK, resources::list(resources, total, q.start))
}

fn conditions(q: &ListQuery) -> Result<Vec<filter::Condition>, Refusal> {
    match &q.filter {
        Some(f) if !f.trim().is_empty() => {
            filter::parse(f).map_err(|e| Refusal::invalid("invalidFilter", e))
        }
        _ => Ok(Vec::new()),
    }
}

fn query_of(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn one(door: &Door, uri: &Uri, status: StatusCode, resource: Value) -> Response {
    let resource = resources::project(
        resource,
        query_of(uri, "attributes").as_deref(),
        query_of(uri, "excludedAttributes").as_deref(),
    );
    let location = resource["meta"]["location"].as_str().map(str::to_owned);
    let mut response = answer(status, resource);
    if status == StatusCode::CREATED {
        if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    door.done(response)
}

// ---- Discovery ----

async fn config(door: Door) -> Response {
    door.done(answer(
        StatusCode::OK,
        discovery::service_provider_config(&door.base),
    ))
}

async fn resource_types(door: Door) -> Response {
    let all = discovery::resource_types(&door.base);
    let total = all.len();
    door.done(answer(StatusCode::OK, resources::list(all, total, 1)))
}

async fn resource_type(door: Door, Path(id): Path<String>) -> Response {
    let found = discovery::resource_types(&door.base)
        .into_iter()
        .find(|r| r["id"] == id.as_str());
    door.reply(
        found
            .map(|r| answer(StatusCode::OK, r))
            .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("No resource type {id}."))),
    )
}

async fn schemas(door: Door) -> Response {
    let all = discovery::schemas(&door.base);
    let total = all.len();
    door.done(answer(StatusCode::OK, resources::list(all, total, 1)))
}

async fn schema(door: Door, Path(id): Path<String>) -> Response {
    let found = discovery::schemas(&door.base)
        .into_iter()
        .find(|s| s["id"] == id.as_str());
    door.reply(
        found
            .map(|s| answer(StatusCode::OK, s))
            .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("No schema {id}."))),
    )
}

// ---- Users ----

fn user_matches(user: &ScimUser, condition: &filter::Condition) -> bool {
    let v = condition.value.as_str();
    match condition.attribute.as_str() {
        "username" => user.user_name.eq_ignore_ascii_case(v),
        "externalid" => user.external_id.as_deref() == Some(v),
        "id" => user.id == v,
        "emails" | "emails.value" => user.email.eq_ignore_ascii_case(v),
        "displayname" => user.display_name.as_deref() == Some(v),
        "active" => user.active.to_string().eq_ignore_ascii_case(v),
        _ => false,
    }
}

async fn list_users(door: Door, uri: Uri) -> Response {
    let reply = async {
        let q = list_query(&uri);
        let conditions = conditions(&q)?;
        if let Some(c) = conditions.iter().find(|c| {
            ![
                "username",
                "externalid",
                "id",
                "emails",
                "emails.value",
                "displayname",
                "active",
            ]
            .contains(&c.attribute.as_str())
        }) {
            return Err(Refusal::invalid(
                "invalidFilter",
                format!(
                    "Users cannot be filtered by {}; use userName, externalId, emails.value or id.",
                    c.attribute
                ),
            ));
        }
        // One indexed condition narrows the read; every condition is then checked.
        let lookup = conditions.iter().find_map(|c| {
            let by = match c.attribute.as_str() {
                "id" => Lookup::Id,
                "username" => Lookup::UserName,
                "emails" | "emails.value" => Lookup::Email,
                "externalid" => Lookup::ExternalId,
                _ => return None,
            };
            Some((by, c.value.as_str()))
        });
        let matching = scim::users(&door.services, lookup)
            .await?
            .iter()
            .filter(|u| conditions.iter().all(|c| user_matches(u, c)))
            .map(|u| resources::user_json(u, &door.base))
            .collect();
        Ok(page(&q, matching))
    }
    .await;
    door.reply(reply)
}

/// A user in the answer (`status` on success), or the refusal.
fn user_answer(
    door: &Door,
    uri: &Uri,
    status: StatusCode,
    result: Result<ScimUser, Refusal>,
) -> Response {
    match result {
        Ok(user) => one(door, uri, status, resources::user_json(&user, &door.base)),
        Err(refusal) => door.reply(Err(refusal)),
    }
}

async fn get_user(door: Door, Path(id): Path<String>, uri: Uri) -> Response {
    let found = scim::user(&door.services, &id).await.map_err(Refusal::from);
    user_answer(&door, &uri, StatusCode::OK, found)
}

async fn create_user(door: Door, uri: Uri, body: Bytes) -> Response {
    let created = async {
        let fields = resources::user_fields(&json_body(&body)?)?;
        Ok(scim::create_user(&door.services, &door.caller, fields).await?)
    }
    .await;
    user_answer(&door, &uri, StatusCode::CREATED, created)
}

async fn replace_user(door: Door, Path(id): Path<String>, uri: Uri, body: Bytes) -> Response {
    let replaced = async {
        let fields = resources::user_fields(&json_body(&body)?)?;
        Ok(scim::replace_user(&door.services, &door.caller, &id, fields).await?)
    }
    .await;
    user_answer(&door, &uri, StatusCode::OK, replaced)
}

/// PATCH is the current attributes with the operations applied, then a replacement.
async fn patch_user(door: Door, Path(id): Path<String>, uri: Uri, body: Bytes) -> Response {
    let patched = async {
        let body = json_body(&body)?;
        let current = scim::user(&door.services, &id).await?;
        let mut fields = scim::UserFields::of(&current);
        resources::patch_user(&mut fields, &body)?;
        Ok(scim::replace_user(&door.services, &door.caller, &id, fields).await?)
    }
    .await;
    user_answer(&door, &uri, StatusCode::OK, patched)
}

async fn delete_user(door: Door, Path(id): Path<String>) -> Response {
    let deleted = scim::delete_user(&door.services, &door.caller, &id)
        .await
        .map(|()| StatusCode::NO_CONTENT.into_response())
        .map_err(Refusal::from);
    door.reply(deleted)
}

// ---- Groups ----

async fn list_groups(door: Door, uri: Uri) -> Response {
    let reply = async {
        let q = list_query(&uri);
        let conditions = conditions(&q)?;
        let users = scim::users(&door.services, None).await?;
        let mut matching = Vec::new();
        for group in scim::groups(&door.services).await? {
            let all = conditions.iter().all(|c| {
                let v = c.value.as_str();
                match c.attribute.as_str() {
                    "displayname" => group.display_name.eq_ignore_ascii_case(v),
                    "externalid" => group.external_id.as_deref() == Some(v),
                    "id" => group.id == v,
                    "members" | "members.value" => group.members.iter().any(|m| m == v),
                    _ => false,
                }
            });
            if all {
                matching.push(resources::group_json(&group, &users, &door.base));
            }
        }
        Ok(page(&q, matching))
    }
    .await;
    door.reply(reply)
}

/// A group in the answer (`status` on success), or the refusal.
async fn group_answer(
    door: &Door,
    uri: &Uri,
    status: StatusCode,
    result: Result<scim::ScimGroup, Refusal>,
) -> Response {
    let users = match result {
        Ok(group) => scim::users(&door.services, None)
            .await
            .map(|users| resources::group_json(&group, &users, &door.base))
            .map_err(Refusal::from),
        Err(refusal) => Err(refusal),
    };
    match users {
        Ok(json) => one(door, uri, status, json),
        Err(refusal) => door.reply(Err(refusal)),
    }
}

async fn get_group(door: Door, Path(id): Path<String>, uri: Uri) -> Response {
    let found = scim::group(&door.services, &id)
        .await
        .map_err(Refusal::from);
    group_answer(&door, &uri, StatusCode::OK, found).await
}

async fn create_group(door: Door, uri: Uri, body: Bytes) -> Response {
    let created = async {
        let fields = resources::group_fields(&json_body(&body)?)?;
        Ok(scim::create_group(&door.services, &door.caller, fields).await?)
    }
    .await;
    group_answer(&door, &uri, StatusCode::CREATED, created).await
}

async fn replace_group(door: Door, Path(id): Path<String>, uri: Uri, body: Bytes) -> Response {
    let replaced = async {
        let fields = resources::group_fields(&json_body(&body)?)?;
        Ok(scim::replace_group(&door.services, &door.caller, &id, fields).await?)
    }
    .await;
    group_answer(&door, &uri, StatusCode::OK, replaced).await
}

/// PATCH answers 204, as Entra ID expects (Okta accepts it too).
async fn patch_group(door: Door, Path(id): Path<String>, body: Bytes) -> Response {
    let patched = async {
        let body = json_body(&body)?;
        let current = scim::group(&door.services, &id).await?;
        let mut fields = scim::GroupFields {
            display_name: current.display_name.clone(),
            external_id: current.external_id.clone(),
            members: current.members.clone(),
        };
        resources::patch_group(&mut fields, &body)?;
        scim::replace_group(&door.services, &door.caller, &id, fields).await?;
        Ok::<_, Refusal>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    door.reply(patched)
}

async fn delete_group(door: Door, Path(id): Path<String>) -> Response {
    let deleted = scim::delete_group(&door.services, &door.caller, &id)
        .await
        .map(|()| StatusCode::NO_CONTENT.into_response())
        .map_err(Refusal::from);
    door.reply(deleted)
}
