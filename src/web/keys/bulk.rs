//! Deactivating or archiving many keys at once: selection → preview (exactly which keys
//! change and which are skipped) → confirm → one audited change per key → results. A failure
//! on one key never stops the others.

use crate::web::extract::FormBody;
use askama::Template;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::Response;

use super::{names, render};
use crate::anthropic::ApiKey;
use crate::service::keys::{self, BulkAction, BulkResult};
use crate::web::context::Layout;
use crate::web::error::{AppError, AppResult};
use crate::web::Ctx;

fn fields(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The selected keys (`key` fields), each checked against the reader's workspaces.
async fn selected(ctx: &Ctx, fields: &[(String, String)]) -> AppResult<Vec<ApiKey>> {
    let ids: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "key")
        .map(|(_, id)| id.clone())
        .collect();
    Ok(keys::selection(&ctx.state, &ctx.caller(), &ids).await?)
}

pub struct PlannedKey {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub workspace: String,
    pub status: String,
    pub skip: Option<&'static str>,
    /// Its recent use, shown before it is stopped.
    pub key_use: super::KeyUse,
}

#[derive(Template)]
#[template(path = "keys/bulk_preview.html")]
struct PreviewPage {
    layout: Layout,
    action: BulkAction,
    changes: Vec<PlannedKey>,
    skipped: Vec<PlannedKey>,
    typed: String,
    error: Option<String>,
}

async fn render_preview(
    ctx: &Ctx,
    action: BulkAction,
    keys: &[ApiKey],
    status: StatusCode,
    typed: String,
    error: Option<String>,
) -> AppResult<Response> {
    let names = names(&ctx.state);
    let recent = super::RecentUse::read(
        &ctx.state,
        &keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
    )
    .await;
    let (changes, skipped): (Vec<PlannedKey>, Vec<PlannedKey>) = keys
        .iter()
        .map(|k| PlannedKey {
            id: k.id.clone(),
            name: k.name.clone(),
            hint: k.partial_key_hint.clone().unwrap_or_default(),
            workspace: names.workspace(k),
            status: k.status.as_str().to_owned(),
            skip: action.skip_reason(k),
            key_use: recent.of(&k.id),
        })
        .partition(|p| p.skip.is_none());
    let page = PreviewPage {
        layout: ctx
            .layout(format!("{} selected keys", action.verb()), "keys")
            .await,
        action,
        changes,
        skipped,
        typed,
        error,
    };
    render(status, &page)
}

/// `GET /keys/bulk?action=…&key=…&key=…`: nothing changes yet.
pub async fn preview(ctx: Ctx, RawQuery(raw): RawQuery) -> AppResult<Response> {
    let fields = fields(raw.as_deref().unwrap_or(""));
    let action = BulkAction::parse(field(&fields, "action"))?;
    let keys = selected(&ctx, &fields).await?;
    if keys.is_empty() {
        return Err(AppError::BadRequest(
            "No key was selected. Go back, tick the keys to change, and try again.".into(),
        ));
    }
    render_preview(&ctx, action, &keys, StatusCode::OK, String::new(), None).await
}

pub struct KeyResult {
    pub id: String,
    pub name: String,
    pub outcome: &'static str,
    pub message: String,
}

#[derive(Template)]
#[template(path = "keys/bulk_results.html")]
struct ResultsPage {
    layout: Layout,
    action: BulkAction,
    results: Vec<KeyResult>,
    succeeded: usize,
    failed: usize,
    skipped: usize,
}

/// `POST /keys/bulk`: applies the confirmed change to each key in turn.
pub async fn apply(ctx: Ctx, FormBody(body): FormBody) -> AppResult<Response> {
    let fields = fields(&body);
    let action = BulkAction::parse(field(&fields, "action"))?;
    let keys = selected(&ctx, &fields).await?;
    let to_change = keys
        .iter()
        .filter(|k| action.skip_reason(k).is_none())
        .count();
    if action == BulkAction::Archive {
        // Archiving cannot be undone: the number typed must match what will change.
        let typed = field(&fields, "confirm_count").trim().to_owned();
        if typed != to_change.to_string() {
            return render_preview(
                &ctx,
                action,
                &keys,
                StatusCode::UNPROCESSABLE_ENTITY,
                typed,
                Some(format!(
                    "Type {to_change}, the number of keys that will be archived, to confirm. Nothing was archived."
                )),
            )
            .await;
        }
    }
    let done = keys::bulk(&ctx.state, &ctx.caller(), action, &keys).await?;
    let results: Vec<KeyResult> = keys
        .iter()
        .zip(done)
        .map(|(key, result)| {
            let (outcome, message) = match result {
                BulkResult::Skipped(reason) => ("skipped", format!("Left alone: {reason}.")),
                BulkResult::Done => (
                    "ok",
                    match action {
                        BulkAction::Deactivate => "Deactivated.".into(),
                        BulkAction::Archive => "Archived.".into(),
                    },
                ),
                BulkResult::Failed(error) => {
                    ("failed", format!("Not changed. {}", error.user_message()))
                }
            };
            KeyResult {
                id: key.id.clone(),
                name: key.name.clone(),
                outcome,
                message,
            }
        })
        .collect();
    let count = |outcome: &str| results.iter().filter(|r| r.outcome == outcome).count();
    let page = ResultsPage {
        layout: ctx
            .layout(format!("{} selected keys: results", action.verb()), "keys")
            .await,
        action,
        succeeded: count("ok"),
        failed: count("failed"),
        skipped: count("skipped"),
        results,
    };
    render(StatusCode::OK, &page)
}
