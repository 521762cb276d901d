//! The SCIM page (owners): what to paste into the identity provider, its tokens, what it sent
//! last and what was refused, the people it provisioned that need a look, and the group
//! mappings that give roles and workspaces.

use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::context::Layout;
use super::error::AppResult;
use super::extract::{FormBody, Path};
use super::present::{org_role_choices, RoleChoice};
use super::Ctx;
use crate::anthropic::{OrgRole, WorkspaceRole};
use crate::auth::tokens::{Token, TokenKind};
use crate::service::scim::{self, LoggedRequest, Mapping, NewMapping, ScimUser};
use crate::service::tokens::{self as token_service, NewToken};
use crate::service::ServiceError;

pub struct WorkspaceChoice {
    pub id: String,
    pub name: String,
}

/// A mapping with its workspaces by name.
pub struct MappingRow {
    pub mapping: Mapping,
    pub role: String,
    pub workspaces: Vec<String>,
}

/// What was typed in the mapping form, kept when it is refused.
#[derive(Default)]
pub struct MappingForm {
    pub group: String,
    pub role: String,
    pub workspace_role: String,
    pub workspaces: Vec<String>,
}

#[derive(Template)]
#[template(path = "scim/index.html")]
struct ScimPage {
    layout: Layout,
    base_url: String,
    tokens: Vec<Token>,
    created: Option<(String, String)>,
    token_error: Option<String>,
    token_name: String,
    last: Option<LoggedRequest>,
    errors: Vec<LoggedRequest>,
    people: usize,
    deactivated: usize,
    problems: Vec<ScimUser>,
    groups: Vec<(String, usize)>,
    mappings: Vec<MappingRow>,
    roles: Vec<RoleChoice>,
    workspace_roles: Vec<(String, String)>,
    choices: Vec<WorkspaceChoice>,
    form: MappingForm,
    mapping_error: Option<String>,
    default_role: String,
    offboard_keys: &'static str,
    dry_run: bool,
}

/// What the page shows beside its forms.
#[derive(Default)]
struct Outcome {
    created: Option<(String, String)>,
    token_error: Option<String>,
    token_name: String,
    form: MappingForm,
    mapping_error: Option<String>,
}

async fn render(ctx: &Ctx, headers: &HeaderMap, outcome: Outcome) -> AppResult<Response> {
    let state = &ctx.state;
    let snapshot = state.org.snapshot();
    let choices: Vec<WorkspaceChoice> = snapshot
        .workspaces
        .iter()
        .filter(|w| !w.is_archived())
        .map(|w| WorkspaceChoice {
            id: w.id.clone(),
            name: w.name.clone(),
        })
        .collect();
    let name_of = |id: &str| {
        choices
            .iter()
            .find(|c| c.id == id)
            .map_or_else(|| id.to_owned(), |c| c.name.clone())
    };
    let mappings = scim::mappings(state)
        .await?
        .into_iter()
        .map(|mapping| MappingRow {
            role: mapping
                .role
                .as_ref()
                .map_or_else(|| "—".to_owned(), crate::labels::org_role),
            workspaces: mapping
                .workspaces
                .iter()
                .map(|(w, r)| format!("{} ({})", name_of(w), crate::labels::workspace_role(r)))
                .collect(),
            mapping,
        })
        .collect();
    let users = scim::users(state, None).await.map_err(service_error)?;
    let groups = scim::groups(state)
        .await
        .map_err(service_error)?
        .into_iter()
        .map(|g| (g.display_name, g.members.len()))
        .collect();
    let refused = outcome.token_error.is_some() || outcome.mapping_error.is_some();
    // The address people reach this page at, unless a public one is configured.
    let base = state.config.public_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost:8080");
        format!("http://{host}")
    });
    let page = ScimPage {
        layout: ctx.layout("Provisioning (SCIM)", "accounts").await,
        base_url: format!("{}/scim/v2", base.trim_end_matches('/')),
        tokens: token_service::of_kind(state, TokenKind::Scim).await?,
        created: outcome.created,
        token_error: outcome.token_error,
        token_name: outcome.token_name,
        last: state.scim_log.last(),
        errors: state.scim_log.errors(),
        people: users.len(),
        deactivated: users.iter().filter(|u| !u.active).count(),
        problems: users.into_iter().filter(|u| u.problem.is_some()).collect(),
        groups,
        mappings,
        roles: org_role_choices(),
        workspace_roles: crate::service::workspaces::assignable_roles()
            .iter()
            .map(|r| (r.as_str().to_owned(), crate::labels::workspace_role(r)))
            .collect(),
        choices,
        form: outcome.form,
        mapping_error: outcome.mapping_error,
        default_role: crate::labels::org_role(&state.config.scim.default_role),
        offboard_keys: match state.config.scim.offboard_keys {
            crate::config::ScimKeys::Deactivate => "deactivated",
            crate::config::ScimKeys::Archive => "archived",
            crate::config::ScimKeys::Leave => "left as they are",
        },
        dry_run: state.config.scim.dry_run,
    };
    let status = if refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    crate::web::page::render(status, &page)
}

fn service_error(error: scim::ScimError) -> super::error::AppError {
    match error {
        scim::ScimError::Service(e) => e.into(),
        other => super::error::AppError::BadRequest(other.to_string()),
    }
}

pub async fn index(ctx: Ctx, headers: HeaderMap) -> AppResult<Response> {
    render(&ctx, &headers, Outcome::default()).await
}

/// A token for the identity provider; the secret is shown once, on this answer.
pub async fn create_token(ctx: Ctx, headers: HeaderMap, body: FormBody) -> AppResult<Response> {
    let form = body.fields();
    let name = form.get("name").trim().to_owned();
    let expires_in_days = match form.get("lifetime").trim() {
        "never" => None,
        days => days
            .parse::<u32>()
            .ok()
            .or(Some(crate::service::tokens::MAX_DAYS)),
    };
    let new = NewToken {
        name: name.clone(),
        kind: TokenKind::Scim,
        account: None,
        read_only: false,
        workspaces: Vec::new(),
        expires_in_days,
    };
    let outcome = match token_service::create(&ctx.state, &ctx.caller(), new).await {
        Ok(created) => Outcome {
            created: Some((created.token.name, created.secret.expose().to_owned())),
            ..Outcome::default()
        },
        Err(ServiceError::Invalid(message)) => Outcome {
            token_error: Some(message),
            token_name: name,
            ..Outcome::default()
        },
        Err(other) => return Err(other.into()),
    };
    render(&ctx, &headers, outcome).await
}

pub async fn add_mapping(ctx: Ctx, headers: HeaderMap, body: FormBody) -> AppResult<Response> {
    let form = body.fields();
    let typed = MappingForm {
        group: form.get("group").trim().to_owned(),
        role: form.get("role").trim().to_owned(),
        workspace_role: form.get("workspace_role").trim().to_owned(),
        workspaces: form.all("workspace"),
    };
    let workspace_role = WorkspaceRole::parse(if typed.workspace_role.is_empty() {
        "workspace_user"
    } else {
        &typed.workspace_role
    });
    let new = NewMapping {
        group: typed.group.clone(),
        role: (!typed.role.is_empty()).then(|| OrgRole::parse(&typed.role)),
        workspaces: typed
            .workspaces
            .iter()
            .map(|w| (w.clone(), workspace_role.clone()))
            .collect(),
    };
    match scim::map_group(&ctx.state, &ctx.caller(), new).await {
        Ok(mapping) => {
            ctx.flash(
                "success",
                format!(
                    "The group {} is mapped. It applies to each person at the identity provider's next change for them.",
                    mapping.group_name
                ),
            )
            .await;
            Ok(Redirect::to("/scim#mappings").into_response())
        }
        Err(ServiceError::Invalid(message)) => {
            let outcome = Outcome {
                form: typed,
                mapping_error: Some(message),
                ..Outcome::default()
            };
            render(&ctx, &headers, outcome).await
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn remove_mapping(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    scim::unmap_group(&ctx.state, &ctx.caller(), id).await?;
    ctx.flash(
        "success",
        "Mapping removed. People keep what it gave until the identity provider's next change for them.",
    )
    .await;
    Ok(Redirect::to("/scim#mappings").into_response())
}
