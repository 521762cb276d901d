//! Responding to a leaked key: find it by its hint or name, deactivate it in one step
//! (recorded as an incident), then the next steps.
//!
//! The search is a POST so that a pasted key never lands in a URL, the browser history or a
//! log, and the search text is never stored: only the matched key's id is audited.

use crate::web::extract::Form;
use crate::web::extract::Path;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::{
    is_live, key_target, load_key, render, set_status, visible, KeyRow, Names, CONSOLE_KEYS_URL,
};
use crate::anthropic::{ApiKey, ApiKeyStatus};
use crate::audit::{Action, Outcome};
use crate::auth::Permission;
use crate::web::context::Layout;
use crate::web::error::AppResult;
use crate::web::Ctx;

/// At most this many matches are listed.
const MAX_MATCHES: usize = 20;

/// Whether `query` designates this key: its id, part of its name or hint, or the whole
/// secret (which starts like the hint's beginning and ends like its end).
fn matches(key: &ApiKey, query: &str) -> bool {
    if key.id == query {
        return true;
    }
    let lower = query.to_lowercase();
    if key.name.to_lowercase().contains(&lower) {
        return true;
    }
    let Some(hint) = key.partial_key_hint.as_deref() else {
        return false;
    };
    if hint.contains(query) {
        return true;
    }
    match hint.split_once("...") {
        Some((head, tail)) if !head.is_empty() && !tail.is_empty() => {
            query.len() > hint.len() && query.starts_with(head) && query.ends_with(tail)
        }
        _ => false,
    }
}

#[derive(Template)]
#[template(path = "keys/leaked.html")]
struct SearchPage {
    layout: Layout,
    searched: bool,
    rows: Vec<KeyRow>,
    more: bool,
}

pub async fn form(ctx: Ctx) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let page = SearchPage {
        layout: ctx.layout("Respond to a leaked key", "keys").await,
        searched: false,
        rows: Vec::new(),
        more: false,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    q: String,
}

pub async fn search(ctx: Ctx, Form(form): Form<SearchForm>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let query = form.q.trim();
    let keys = ctx.state.org.api_keys().await?;
    let hygiene = super::Hygiene::load(&ctx.state).await;
    let names = Names::load(&ctx.state).await;
    let mut found: Vec<&ApiKey> = if query.len() < 3 {
        Vec::new()
    } else {
        keys.iter()
            .filter(|k| visible(&ctx, k) && matches(k, query))
            .collect()
    };
    // Keys that still work first: those are the ones to stop.
    found.sort_by_key(|k| (!is_live(k), std::cmp::Reverse(k.created_at)));
    let page = SearchPage {
        layout: ctx.layout("Respond to a leaked key", "keys").await,
        searched: true,
        more: found.len() > MAX_MATCHES,
        rows: found
            .into_iter()
            .take(MAX_MATCHES)
            .map(|k| names.row(k, &hygiene))
            .collect(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "keys/leaked_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    row: KeyRow,
    note: String,
    error: Option<String>,
}

async fn render_confirm(
    ctx: &Ctx,
    key: &ApiKey,
    status: StatusCode,
    note: String,
    error: Option<String>,
) -> AppResult<Response> {
    let hygiene = super::Hygiene::load(&ctx.state).await;
    let names = Names::load(&ctx.state).await;
    let page = ConfirmPage {
        layout: ctx.layout(format!("Leaked key {}", key.name), "keys").await,
        row: names.row(key, &hygiene),
        note,
        error,
    };
    render(status, &page)
}

pub async fn confirm(ctx: Ctx, Path(key_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let key = load_key(&ctx, &key_id).await?;
    render_confirm(&ctx, &key, StatusCode::OK, String::new(), None).await
}

#[derive(Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    note: String,
}

/// Records the incident, then deactivates the key if it still works.
pub async fn report(
    ctx: Ctx,
    Path(key_id): Path<String>,
    Form(form): Form<ReportForm>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let key = load_key(&ctx, &key_id).await?;
    let note: String = form.note.trim().chars().take(2000).collect();
    let incident = ctx
        .audit(
            Action::KeyLeakReported,
            key_target(&key),
            json!({ "note": note, "status": key.status.as_str() }),
            Outcome::Ok,
        )
        .await?;
    if key.status == ApiKeyStatus::Active {
        let context = json!({ "reason": "leaked", "incident": incident });
        if let Err(error) = set_status(&ctx, &key, ApiKeyStatus::Inactive, context).await? {
            let status = super::failure_status(&error);
            let message = format!(
                "The leak is recorded, but the key could NOT be deactivated and still works. {} Try again, or deactivate it in the Console.",
                error.user_message()
            );
            return render_confirm(&ctx, &key, status, form.note, Some(message)).await;
        }
        ctx.flash(
            "success",
            format!(
                "{} is deactivated: requests with it are refused from now on.",
                key.name
            ),
        )
        .await;
    } else {
        ctx.flash(
            "info",
            format!(
                "{} was already {}, so it cannot be used; the leak is recorded.",
                key.name, key.status
            ),
        )
        .await;
    }
    Ok(Redirect::to(&format!("/keys/leaked/{}/next", key.id)).into_response())
}

#[derive(Template)]
#[template(path = "keys/leaked_next.html")]
struct NextPage {
    layout: Layout,
    row: KeyRow,
    console_url: &'static str,
    scheduled: Option<String>,
}

pub async fn next_steps(ctx: Ctx, Path(key_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let key = load_key(&ctx, &key_id).await?;
    let hygiene = super::Hygiene::load(&ctx.state).await;
    let names = Names::load(&ctx.state).await;
    let scheduled = crate::service::schedules::pending_for(&ctx.state, &key.id)
        .await?
        .map(|s| s.run_at_label());
    let page = NextPage {
        layout: ctx.layout("After a leak: next steps", "keys").await,
        row: names.row(&key, &hygiene),
        console_url: CONSOLE_KEYS_URL,
        scheduled,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn key(hint: &str) -> ApiKey {
        ApiKey {
            id: "apikey_x".into(),
            object_type: "api_key".into(),
            name: "Billing service".into(),
            status: ApiKeyStatus::Active,
            created_at: Utc::now(),
            created_by: None,
            expires_at: None,
            partial_key_hint: Some(hint.into()),
            principal: None,
            scope: None,
            legacy_workspace_id: None,
        }
    }

    #[test]
    fn a_pasted_full_key_finds_its_hint() {
        let k = key("sk-ant-api03-R2D...igAA");
        assert!(matches(&k, "sk-ant-api03-R2DxxxxxxxxxxxxxxxxxxxxxxxxigAA"));
        assert!(matches(&k, "R2D...igAA"));
        assert!(matches(&k, "billing"));
        assert!(!matches(&k, "sk-ant-api03-ZZZxxxxxxxxxxxxxxxxxxxxxxxigAA"));
    }
}
