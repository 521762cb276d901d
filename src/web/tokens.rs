//! API tokens: `/tokens` for one's own, and the tokens section of an account's page for
//! owners. The secret is rendered once, in the answer to the creation (never in a flash
//! message, which would store it in the session).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};

use super::context::Layout;
use super::error::AppResult;
use super::extract::{FormBody, Path};
use super::Ctx;
use crate::auth::accounts::Account;
use crate::auth::tokens::{Token, TokenKind};
use crate::service::tokens::{self as token_service, NewToken, DEFAULT_DAYS, MAX_DAYS};
use crate::service::ServiceError;

/// The lifetimes offered in the form, in days; `never` is added for owners' tokens.
const LIFETIMES: [u32; 6] = [7, 30, 60, DEFAULT_DAYS, 180, MAX_DAYS];

/// A workspace the token may be narrowed to.
pub struct WorkspaceChoice {
    pub id: String,
    pub name: String,
}

/// What was typed in the creation form, kept when it is refused.
pub struct TokenForm {
    pub name: String,
    /// Days, or `never`.
    pub lifetime: String,
    pub read_only: bool,
    pub workspaces: Vec<String>,
}

impl Default for TokenForm {
    fn default() -> Self {
        TokenForm {
            name: String::new(),
            lifetime: DEFAULT_DAYS.to_string(),
            read_only: false,
            workspaces: Vec::new(),
        }
    }
}

/// A token as listed: its state in words and its scope by workspace name.
pub struct TokenRow {
    pub token: Token,
    /// `Active`, `Expired` or `Revoked`.
    pub status: &'static str,
    pub scope: String,
    /// Expires within a week.
    pub expiring_soon: bool,
}

/// The tokens of one account, with the form to make another.
pub struct TokensOf {
    pub account: Account,
    /// Whose page this is: `/tokens` (the person's own) or `/accounts/{id}`.
    pub own: bool,
    pub rows: Vec<TokenRow>,
    pub choices: Vec<WorkspaceChoice>,
    pub lifetimes: Vec<u32>,
    pub may_never_expire: bool,
    pub form: TokenForm,
    pub error: Option<String>,
    /// The secret just created, shown once.
    pub created: Option<(String, String)>,
    pub csrf: String,
    /// Where the forms post: `/tokens` or `/accounts/{id}/tokens`.
    pub action: String,
}

#[derive(Template)]
#[template(path = "tokens/section.html")]
pub struct TokensSection {
    pub tokens: TokensOf,
}

#[derive(Template)]
#[template(path = "tokens/index.html")]
struct IndexPage {
    layout: Layout,
    section: TokensSection,
    /// Where scripts point the SDK: this server's public address when configured.
    base_url: String,
}

fn row(token: Token, names: &[WorkspaceChoice], now: DateTime<Utc>) -> TokenRow {
    let status = if token.is_revoked() {
        "Revoked"
    } else if token.is_expired(now) {
        "Expired"
    } else {
        "Active"
    };
    let reach = match &token.workspaces {
        None => "everything its account may".to_owned(),
        Some(ids) => ids
            .iter()
            .map(|id| {
                names
                    .iter()
                    .find(|c| &c.id == id)
                    .map_or_else(|| id.clone(), |c| c.name.clone())
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let scope = if token.read_only {
        format!("Read only: {reach}")
    } else {
        reach
    };
    TokenRow {
        expiring_soon: status == "Active"
            && token
                .expires_at
                .is_some_and(|at| at - now < chrono::Duration::days(7)),
        status,
        scope,
        token,
    }
}

/// The account's tokens and the creation form, as the page shows them.
pub async fn section(
    ctx: &Ctx,
    account: Account,
    form: TokenForm,
    error: Option<String>,
    created: Option<(String, String)>,
) -> AppResult<TokensSection> {
    let workspaces = ctx.state.org.snapshot().workspaces.clone();
    let choices: Vec<WorkspaceChoice> = workspaces
        .iter()
        .filter(|w| !w.is_archived() && account.may_reach_workspace(&w.id))
        .map(|w| WorkspaceChoice {
            id: w.id.clone(),
            name: w.name.clone(),
        })
        .collect();
    let now = ctx.state.clock.now();
    let rows = token_service::of_account(&ctx.state, &account)
        .await?
        .into_iter()
        .map(|token| row(token, &choices, now))
        .collect();
    let own = account.id == ctx.account.id;
    Ok(TokensSection {
        tokens: TokensOf {
            action: if own {
                "/tokens".to_owned()
            } else {
                format!("/accounts/{}/tokens", account.id)
            },
            may_never_expire: account.role == crate::auth::Role::Owner,
            own,
            account,
            rows,
            choices,
            lifetimes: LIFETIMES.to_vec(),
            form,
            error,
            created,
            csrf: ctx.csrf.clone(),
        },
    })
}

async fn render_index(
    ctx: &Ctx,
    form: TokenForm,
    error: Option<String>,
    created: Option<(String, String)>,
) -> AppResult<Response> {
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = IndexPage {
        layout: ctx.layout("API tokens", "").await,
        section: section(ctx, ctx.account.clone(), form, error, created).await?,
        base_url: ctx
            .state
            .config
            .public_url
            .clone()
            .unwrap_or_else(|| "https://orgkeeper.example.com".to_owned()),
    };
    crate::web::page::render(status, &page)
}

pub async fn index(ctx: Ctx) -> AppResult<Response> {
    render_index(&ctx, TokenForm::default(), None, None).await
}

fn parse(body: &FormBody) -> TokenForm {
    let fields = body.fields();
    TokenForm {
        name: fields.get("name").trim().to_owned(),
        lifetime: fields.get("lifetime"),
        read_only: !fields.all("read_only").is_empty(),
        workspaces: fields.all("workspace"),
    }
}

/// Creates a token for `account` from the form; the secret, or the refusal, on the page.
pub async fn create_for(
    ctx: &Ctx,
    account: Account,
    body: &FormBody,
) -> AppResult<Result<(String, String), (TokenForm, String)>> {
    let form = parse(body);
    let expires_in_days = match form.lifetime.as_str() {
        "never" => None,
        days => match days.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                let error = format!("Choose how long the token lives (1 to {MAX_DAYS} days).");
                return Ok(Err((form, error)));
            }
        },
    };
    let new = NewToken {
        name: form.name.clone(),
        kind: TokenKind::Api,
        account: Some(account),
        read_only: form.read_only,
        workspaces: form.workspaces.clone(),
        expires_in_days,
    };
    match token_service::create(&ctx.state, &ctx.caller(), new).await {
        Ok(created) => Ok(Ok((created.token.name, created.secret.expose().to_owned()))),
        Err(ServiceError::Invalid(message)) => Ok(Err((form, message))),
        Err(other) => Err(other.into()),
    }
}

pub async fn create(ctx: Ctx, body: FormBody) -> AppResult<Response> {
    match create_for(&ctx, ctx.account.clone(), &body).await? {
        Ok(created) => render_index(&ctx, TokenForm::default(), None, Some(created)).await,
        Err((form, error)) => render_index(&ctx, form, Some(error), None).await,
    }
}

/// Revokes a token (one's own, or anyone's for owners) and goes back where it was listed.
pub async fn revoke(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    let token = token_service::find(&ctx.state, &ctx.caller(), id).await?;
    let back = match token.account_id {
        Some(account) if account != ctx.account.id => format!("/accounts/{account}#tokens"),
        Some(_) => "/tokens".to_owned(),
        None => "/scim#tokens".to_owned(),
    };
    match token_service::revoke(&ctx.state, &ctx.caller(), &token).await {
        Ok(()) => {
            let message = format!(
                "Token {} is revoked: its next request is refused.",
                token.name
            );
            ctx.flash("success", message).await;
        }
        Err(ServiceError::Invalid(message)) => ctx.flash("error", message).await,
        Err(other) => return Err(other.into()),
    }
    Ok(Redirect::to(&back).into_response())
}
