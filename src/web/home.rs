//! The home page.

use askama::Template;
use axum::response::{Html, IntoResponse, Response};

use super::context::Layout;
use super::error::AppResult;
use super::Ctx;
use crate::auth::Permission;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    organization: Option<String>,
    upstream_error: Option<String>,
    can_audit: bool,
    can_accounts: bool,
    team_lead_workspaces: usize,
}

pub async fn show(ctx: Ctx) -> AppResult<Response> {
    ctx.require(Permission::ViewWorkspaces).await?;
    let (organization, upstream_error) = match ctx.state.api.get_organization().await {
        Ok(org) => (Some(org.name), None),
        Err(error) => (None, Some(error.user_message())),
    };
    let page = HomePage {
        layout: ctx.layout("Overview", "home").await,
        organization,
        upstream_error,
        can_audit: ctx.can(Permission::ViewAudit),
        can_accounts: ctx.can(Permission::ManageAccounts),
        team_lead_workspaces: if ctx.role().is_workspace_scoped() {
            ctx.account.workspaces.len()
        } else {
            0
        },
    };
    Ok(Html(page.render().map_err(anyhow::Error::from)?).into_response())
}
