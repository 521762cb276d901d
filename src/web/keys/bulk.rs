//! Deactivating or archiving many keys at once: selection → preview (exactly which keys
//! change and which are skipped) → confirm → one audited change per key → results. A failure
//! on one key never stops the others.

use crate::web::extract::FormBody;
use askama::Template;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::{load_key, render, visible, Names};
use crate::anthropic::{ApiKey, ApiKeyStatus};
use crate::auth::Permission;
use crate::web::context::Layout;
use crate::web::error::{AppError, AppResult};
use crate::web::Ctx;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Deactivate,
    Archive,
}

impl BulkAction {
    fn parse(text: &str) -> AppResult<BulkAction> {
        match text {
            "deactivate" => Ok(BulkAction::Deactivate),
            "archive" => Ok(BulkAction::Archive),
            _ => Err(AppError::BadRequest(
                "Choose whether to deactivate or archive the selected keys.".into(),
            )),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            BulkAction::Deactivate => "deactivate",
            BulkAction::Archive => "archive",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            BulkAction::Deactivate => "Deactivate",
            BulkAction::Archive => "Archive",
        }
    }

    fn status(self) -> ApiKeyStatus {
        match self {
            BulkAction::Deactivate => ApiKeyStatus::Inactive,
            BulkAction::Archive => ApiKeyStatus::Archived,
        }
    }

    fn skip_reason(self, key: &ApiKey) -> Option<&'static str> {
        match (self, &key.status) {
            (BulkAction::Deactivate, ApiKeyStatus::Inactive) => Some("already inactive"),
            (_, ApiKeyStatus::Archived) => Some("already archived"),
            (BulkAction::Deactivate, ApiKeyStatus::Expired) => {
                Some("expired: it no longer works and can only be archived")
            }
            _ => None,
        }
    }
}

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

/// The selected keys, each checked against the reader's workspaces; unknown ids are ignored.
async fn selected(ctx: &Ctx, fields: &[(String, String)]) -> AppResult<Vec<ApiKey>> {
    let keys = ctx.state.org.api_keys().await?;
    let mut out: Vec<ApiKey> = Vec::new();
    for (_, id) in fields.iter().filter(|(k, _)| k == "key") {
        if out.iter().any(|k| &k.id == id) {
            continue;
        }
        if let Some(key) = keys.iter().find(|k| &k.id == id) {
            if !visible(ctx, key) {
                // Refused and audited like opening the key by URL.
                load_key(ctx, id).await?;
            }
            out.push(key.clone());
        }
    }
    Ok(out)
}

pub struct PlannedKey {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub workspace: String,
    pub status: String,
    pub skip: Option<&'static str>,
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
    let names = Names::load(&ctx.state).await;
    let (changes, skipped): (Vec<PlannedKey>, Vec<PlannedKey>) = keys
        .iter()
        .map(|k| PlannedKey {
            id: k.id.clone(),
            name: k.name.clone(),
            hint: k.partial_key_hint.clone().unwrap_or_default(),
            workspace: names.workspace(k),
            status: k.status.as_str().to_owned(),
            skip: action.skip_reason(k),
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
    ctx.require(Permission::ManageOrganization).await?;
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
    ctx.require(Permission::ManageOrganization).await?;
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
    let mut results = Vec::new();
    for key in &keys {
        if let Some(reason) = action.skip_reason(key) {
            results.push(KeyResult {
                id: key.id.clone(),
                name: key.name.clone(),
                outcome: "skipped",
                message: format!("Left alone: {reason}."),
            });
            continue;
        }
        let result = super::set_status(&ctx, key, action.status(), json!({ "bulk": true })).await?;
        results.push(match result {
            Ok(_) => KeyResult {
                id: key.id.clone(),
                name: key.name.clone(),
                outcome: "ok",
                message: match action {
                    BulkAction::Deactivate => "Deactivated.".into(),
                    BulkAction::Archive => "Archived.".into(),
                },
            },
            Err(error) => KeyResult {
                id: key.id.clone(),
                name: key.name.clone(),
                outcome: "failed",
                message: format!("Not changed. {}", error.user_message()),
            },
        });
    }
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
