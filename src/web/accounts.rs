//! The Accounts page (owners only): dashboard accounts, their roles and team-lead workspaces.
//! Also each person's own password change.

use crate::web::extract::Form;
use crate::web::extract::FormBody;
use crate::web::extract::Path;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::context::Layout;
use super::error::{AppError, AppResult};
use super::tokens;
use super::Ctx;
use crate::auth::accounts::Account;
use crate::auth::{session, Permission, Role};
use crate::service::{self, ServiceError};

/// A workspace a team lead can be given, by name.
pub struct WorkspaceChoice {
    pub id: String,
    pub name: String,
    pub archived: bool,
}

/// The organization's workspaces for the team-lead picker, from the model (archived ones
/// too, so an assignment to one still shows its name). Before the first sync the page still
/// works; assigned ids are then shown without names.
async fn workspace_choices(ctx: &Ctx) -> (Vec<WorkspaceChoice>, Option<String>) {
    match ctx.state.org.workspaces().await {
        Ok(workspaces) => (
            workspaces
                .iter()
                .map(|w| WorkspaceChoice {
                    archived: w.is_archived(),
                    id: w.id.clone(),
                    name: w.name.clone(),
                })
                .collect(),
            None,
        ),
        Err(error) => (Vec::new(), Some(error.user_message())),
    }
}

pub struct AccountRow {
    pub account: Account,
    pub locked: bool,
    pub workspace_names: Vec<String>,
}

fn rows(
    accounts: Vec<Account>,
    choices: &[WorkspaceChoice],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<AccountRow> {
    accounts
        .into_iter()
        .map(|account| AccountRow {
            locked: account.is_locked(now),
            workspace_names: account
                .workspaces
                .iter()
                .map(|id| {
                    choices
                        .iter()
                        .find(|c| &c.id == id)
                        .map(|c| c.name.clone())
                        .unwrap_or_else(|| id.clone())
                })
                .collect(),
            account,
        })
        .collect()
}

#[derive(Default)]
pub struct NewAccountForm {
    pub username: String,
    pub role: String,
    pub workspaces: Vec<String>,
}

#[derive(Template)]
#[template(path = "accounts/index.html")]
struct IndexPage {
    layout: Layout,
    rows: Vec<AccountRow>,
    roles: Vec<Role>,
    choices: Vec<WorkspaceChoice>,
    upstream_error: Option<String>,
    form: NewAccountForm,
    form_error: Option<String>,
    mappings: Vec<MappingRow>,
    sso_enabled: bool,
    /// What the group form holds: empty, or what was typed when it was refused.
    mapping_form: MappingForm,
    /// Why the group form was refused, shown above it.
    mapping_error: Option<String>,
}

/// The single sign-on group form as typed.
#[derive(Default)]
pub struct MappingForm {
    pub group: String,
    pub role: String,
    pub workspaces: Vec<String>,
}

/// A group mapping with its workspaces by name.
pub struct MappingRow {
    pub mapping: crate::auth::sso::GroupMapping,
    pub workspace_names: Vec<String>,
}

fn workspace_name(choices: &[WorkspaceChoice], id: &str) -> String {
    choices
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.name.clone())
        .unwrap_or_else(|| id.to_owned())
}

async fn render_index(
    ctx: &Ctx,
    form: NewAccountForm,
    form_error: Option<String>,
) -> AppResult<Response> {
    render_page(ctx, form, form_error, MappingForm::default(), None).await
}

/// The accounts page with the group form refused: what was typed stays, with why, next to
/// the form.
pub async fn render_mapping_error(
    ctx: &Ctx,
    mapping_form: MappingForm,
    error: String,
) -> AppResult<Response> {
    render_page(
        ctx,
        NewAccountForm::default(),
        None,
        mapping_form,
        Some(error),
    )
    .await
}

async fn render_page(
    ctx: &Ctx,
    form: NewAccountForm,
    form_error: Option<String>,
    mapping_form: MappingForm,
    mapping_error: Option<String>,
) -> AppResult<Response> {
    let (choices, upstream_error) = workspace_choices(ctx).await;
    let mappings = service::sso::list_mappings(&ctx.state)
        .await?
        .into_iter()
        .map(|mapping| MappingRow {
            workspace_names: mapping
                .workspaces
                .iter()
                .map(|id| workspace_name(&choices, id))
                .collect(),
            mapping,
        })
        .collect();
    let refused = form_error.is_some() || mapping_error.is_some();
    let page = IndexPage {
        mappings,
        mapping_form,
        mapping_error,
        sso_enabled: ctx.state.oidc.is_some() || ctx.state.config.sso.proxy.is_some(),
        layout: ctx.layout("Accounts", "accounts").await,
        rows: rows(
            service::accounts::list(&ctx.state).await?,
            &choices,
            ctx.state.clock.now(),
        ),
        roles: Role::ALL.to_vec(),
        choices,
        upstream_error,
        form,
        form_error: form_error.clone(),
    };
    let status = if refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    crate::web::page::render(status, &page)
}

pub async fn index(ctx: Ctx) -> AppResult<Response> {
    ctx.require(Permission::ManageAccounts).await?;
    render_index(
        &ctx,
        NewAccountForm {
            role: "viewer".into(),
            ..Default::default()
        },
        None,
    )
    .await
}

pub async fn create(ctx: Ctx, body: FormBody) -> AppResult<Response> {
    let fields = body.fields();
    let form = NewAccountForm {
        username: fields.get("username").trim().to_owned(),
        role: fields.get("role"),
        workspaces: fields.all("workspace"),
    };
    let role = match form.role.parse::<Role>() {
        Ok(role) => role,
        Err(message) => return render_index(&ctx, form, Some(message)).await,
    };
    let new = service::accounts::NewAccount {
        username: form.username.clone(),
        role: Some(role),
        password: fields.get("password"),
        workspaces: form.workspaces.clone(),
    };
    match service::accounts::create(&ctx.state, &ctx.caller(), new).await {
        Ok(account) => {
            ctx.flash(
                "success",
                format!("Account {} created as {}.", account.username, role.label()),
            )
            .await;
            Ok(Redirect::to("/accounts").into_response())
        }
        Err(ServiceError::Invalid(message)) => render_index(&ctx, form, Some(message)).await,
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "accounts/show.html")]
struct ShowPage {
    layout: Layout,
    row: AccountRow,
    roles: Vec<Role>,
    choices: Vec<WorkspaceChoice>,
    upstream_error: Option<String>,
    is_self: bool,
    error: Option<String>,
    tokens: super::tokens::TokensSection,
}

async fn load(ctx: &Ctx, id: i64) -> AppResult<Account> {
    Ok(service::accounts::find(&ctx.state, id).await?)
}

async fn render_show(ctx: &Ctx, account: Account, error: Option<String>) -> AppResult<Response> {
    let tokens = tokens::section(ctx, account.clone(), Default::default(), None, None).await?;
    render_show_with(ctx, account, error, tokens).await
}

async fn render_show_with(
    ctx: &Ctx,
    account: Account,
    error: Option<String>,
    tokens: tokens::TokensSection,
) -> AppResult<Response> {
    let (choices, upstream_error) = workspace_choices(ctx).await;
    let is_self = account.id == ctx.account.id;
    let page = ShowPage {
        layout: ctx
            .layout(format!("Account {}", account.username), "accounts")
            .await,
        row: rows(vec![account], &choices, ctx.state.clock.now())
            .pop()
            .expect("one row"),
        roles: Role::ALL.to_vec(),
        choices,
        upstream_error,
        is_self,
        error: error.clone(),
        tokens,
    };
    let refused = error.is_some() || page.tokens.tokens.error.is_some();
    let status = if refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    crate::web::page::render(status, &page)
}

pub async fn show(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    ctx.require(Permission::ManageAccounts).await?;
    let account = load(&ctx, id).await?;
    render_show(&ctx, account, None).await
}

/// An owner makes a token for someone else; the secret is shown once on their page.
pub async fn create_token(ctx: Ctx, Path(id): Path<i64>, body: FormBody) -> AppResult<Response> {
    let account = load(&ctx, id).await?;
    let section = match tokens::create_for(&ctx, account.clone(), &body).await? {
        Ok(created) => {
            let fresh = load(&ctx, id).await?;
            tokens::section(&ctx, fresh, Default::default(), None, Some(created)).await?
        }
        Err((form, error)) => {
            tokens::section(&ctx, account.clone(), form, Some(error), None).await?
        }
    };
    render_show_with(&ctx, account, None, section).await
}

/// Shared ending of every change on the account page: back to the page with a notice, or
/// the page again with the refusal explained.
async fn finish(
    ctx: &Ctx,
    account: Account,
    result: Result<(), ServiceError>,
    success: String,
) -> AppResult<Response> {
    match result {
        Ok(()) => {
            ctx.flash("success", success).await;
            Ok(Redirect::to(&format!("/accounts/{}", account.id)).into_response())
        }
        Err(ServiceError::Invalid(message)) => {
            let fresh = load(ctx, account.id).await?;
            render_show(ctx, fresh, Some(message)).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn change_role(
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(form): Form<RoleForm>,
) -> AppResult<Response> {
    let account = load(&ctx, id).await?;
    let role: Role = form.role.parse().map_err(AppError::BadRequest)?;
    let result = service::accounts::change_role(&ctx.state, &ctx.caller(), &account, role).await;
    let message = format!(
        "{} is now {}; their open sessions were ended.",
        account.username,
        role.label()
    );
    finish(&ctx, account, result, message).await
}

pub async fn change_workspaces(
    ctx: Ctx,
    Path(id): Path<i64>,
    body: FormBody,
) -> AppResult<Response> {
    let account = load(&ctx, id).await?;
    let workspaces = body.fields().all("workspace");
    let result =
        service::accounts::change_workspaces(&ctx.state, &ctx.caller(), &account, workspaces).await;
    if let Err(ServiceError::Invalid(message)) = &result {
        if !account.role.is_workspace_scoped() {
            return Err(AppError::BadRequest(message.clone()));
        }
    }
    let message = format!("Workspaces of {} updated.", account.username);
    finish(&ctx, account, result, message).await
}

pub async fn disable(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    let account = load(&ctx, id).await?;
    let result = service::accounts::set_disabled(&ctx.state, &ctx.caller(), &account, true).await;
    let message = format!(
        "{} is disabled and signed out everywhere.",
        account.username
    );
    finish(&ctx, account, result, message).await
}

pub async fn enable(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    let account = load(&ctx, id).await?;
    let result = service::accounts::set_disabled(&ctx.state, &ctx.caller(), &account, false).await;
    let message = format!("{} can sign in again.", account.username);
    finish(&ctx, account, result, message).await
}

#[derive(Deserialize)]
pub struct ResetForm {
    password: String,
}

pub async fn reset_password(
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(form): Form<ResetForm>,
) -> AppResult<Response> {
    let account = load(&ctx, id).await?;
    let result =
        service::accounts::reset_password(&ctx.state, &ctx.caller(), &account, &form.password)
            .await;
    let message = format!("New password set for {}; their sessions were ended. Give them the password over a safe channel.", account.username);
    finish(&ctx, account, result, message).await
}

pub async fn end_sessions(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    let account = load(&ctx, id).await?;
    let result = service::accounts::end_sessions(&ctx.state, &ctx.caller(), &account).await;
    let message = format!("Every session of {} has ended.", account.username);
    finish(&ctx, account, result, message).await
}

pub async fn unlock(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    let account = load(&ctx, id).await?;
    let result = service::accounts::unlock(&ctx.state, &ctx.caller(), &account).await;
    let message = format!("{} can try signing in again.", account.username);
    finish(&ctx, account, result, message).await
}

#[derive(Template)]
#[template(path = "accounts/password.html")]
struct OwnPasswordPage {
    layout: Layout,
    error: Option<String>,
}

pub async fn own_password_form(ctx: Ctx) -> AppResult<Response> {
    let page = OwnPasswordPage {
        layout: ctx.layout("Change your password", "").await,
        error: None,
    };
    crate::web::page::render(axum::http::StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct OwnPasswordForm {
    current: String,
    password: String,
    confirm: String,
}

pub async fn own_password_submit(
    ctx: Ctx,
    Form(form): Form<OwnPasswordForm>,
) -> AppResult<Response> {
    let changed = service::accounts::change_own_password(
        &ctx.state,
        &ctx.caller(),
        form.current,
        &form.password,
        &form.confirm,
    )
    .await;
    let fresh = match changed {
        Ok(fresh) => fresh,
        Err(ServiceError::Invalid(error)) => {
            let page = OwnPasswordPage {
                layout: ctx.layout("Change your password", "").await,
                error: Some(error),
            };
            return crate::web::page::render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
        Err(other) => return Err(other.into()),
    };
    // Every other session ended with the epoch bump; keep this one by signing in afresh.
    session::sign_in(&ctx.session, &fresh, ctx.state.clock.now()).await?;
    ctx.flash(
        "success",
        "Your password was changed and your other sessions were ended.",
    )
    .await;
    Ok(Redirect::to("/").into_response())
}
