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

use super::{hygiene, load_key, names, render, row, KeyRow, CONSOLE_KEYS_URL};
use crate::anthropic::ApiKey;
use crate::service::keys::{self, LeakResponse, MAX_MATCHES};
use crate::web::context::Layout;
use crate::web::error::AppResult;
use crate::web::Ctx;

#[derive(Template)]
#[template(path = "keys/leaked.html")]
struct SearchPage {
    layout: Layout,
    searched: bool,
    rows: Vec<KeyRow>,
    more: bool,
}

pub async fn form(ctx: Ctx) -> AppResult<Response> {
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
    let keys = ctx.state.org.api_keys().await?;
    let (hygiene, names) = (hygiene(&ctx.state).await, names(&ctx.state));
    let found = keys::search(&keys, &ctx.caller(), &form.q);
    let page = SearchPage {
        layout: ctx.layout("Respond to a leaked key", "keys").await,
        searched: true,
        more: found.len() > MAX_MATCHES,
        rows: found
            .into_iter()
            .take(MAX_MATCHES)
            .map(|k| row(&names, k, &hygiene))
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
    let (hygiene, names) = (hygiene(&ctx.state).await, names(&ctx.state));
    let page = ConfirmPage {
        layout: ctx.layout(format!("Leaked key {}", key.name), "keys").await,
        row: row(&names, key, &hygiene),
        note,
        error,
    };
    render(status, &page)
}

pub async fn confirm(ctx: Ctx, Path(key_id): Path<String>) -> AppResult<Response> {
    let key = load_key(&ctx, &key_id).await?;
    render_confirm(&ctx, &key, StatusCode::OK, String::new(), None).await
}

#[derive(Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    note: String,
}

/// Records the incident, then deactivates the key if it still works (the leak policy is
/// `service::keys::report_leak`).
pub async fn report(
    ctx: Ctx,
    Path(key_id): Path<String>,
    Form(form): Form<ReportForm>,
) -> AppResult<Response> {
    let key = load_key(&ctx, &key_id).await?;
    match keys::report_leak(&ctx.state, &ctx.caller(), &key, &form.note).await? {
        LeakResponse::Deactivated => {
            ctx.flash(
                "success",
                format!(
                    "{} is deactivated: requests with it are refused from now on.",
                    key.name
                ),
            )
            .await
        }
        LeakResponse::AlreadyUnusable => {
            ctx.flash(
                "info",
                format!(
                    "{} was already {}, so it cannot be used; the leak is recorded.",
                    key.name, key.status
                ),
            )
            .await
        }
        LeakResponse::StillWorks(error) => {
            let status = super::failure_status(&error);
            let message = format!(
                "The leak is recorded, but the key could NOT be deactivated and still works. {} Try again, or deactivate it in the Console.",
                error.user_message()
            );
            return render_confirm(&ctx, &key, status, form.note, Some(message)).await;
        }
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
    let key = load_key(&ctx, &key_id).await?;
    let (hygiene, names) = (hygiene(&ctx.state).await, names(&ctx.state));
    let scheduled = crate::service::schedules::pending_for(&ctx.state, &key.id)
        .await?
        .map(|s| s.run_at_label());
    let page = NextPage {
        layout: ctx.layout("After a leak: next steps", "keys").await,
        row: row(&names, &key, &hygiene),
        console_url: CONSOLE_KEYS_URL,
        scheduled,
    };
    render(StatusCode::OK, &page)
}
