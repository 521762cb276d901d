//! The API keys area: inventory with hygiene flags, one key's page, lifecycle actions
//! (rename, deactivate, reactivate, archive), bulk changes, scheduled archives, the leaked-key
//! response and member offboarding.
//!
//! Keys cannot be created or deleted through the Admin API (§5.6): the pages say so and link to
//! the Console. Every change is one `ctx.org_action` per key, so each lands in the audit log
//! with its own outcome.

mod bulk;
mod leaked;
mod offboarding;
mod schedule;

use std::collections::HashSet;
use std::sync::Arc;

use crate::web::extract::Form;
use crate::web::extract::{Path, Query};
use crate::web::routes::{Access::Needs, Routes};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::Layout;
use super::error::AppResult;
use super::present;
use super::{AppState, Ctx};
use crate::anthropic::{ApiError, ApiKey, ApiKeyScope, ApiKeyStatus, KeyKind};
use crate::audit::{Filter, Record};
use crate::auth::Permission;
use crate::org::keys::{
    count_flags, creators_named, is_live, workspace_choices, Flag, Hygiene, Names,
};
use crate::service::keys::StatusChanged;
use crate::service::{self, ServiceError};
pub(crate) use crate::web::page::{failure_status, render};

/// Where keys are created: the Admin API cannot.
pub const CONSOLE_KEYS_URL: &str = "https://console.anthropic.com/settings/keys";
const PAGE_SIZE: usize = 50;

pub fn routes() -> Routes {
    use Permission::*;
    let (read, manage) = (Needs(ViewWorkspaces), Needs(ManageOrganization));
    Routes::new()
        .get("/keys", read, index)
        .get("/keys/bulk", manage, bulk::preview)
        .post("/keys/bulk", manage, bulk::apply)
        .get("/keys/schedules", read, schedule::index)
        .post(
            "/keys/schedules/{schedule_id}/cancel",
            manage,
            schedule::cancel,
        )
        .get("/keys/leaked", manage, leaked::form)
        .post("/keys/leaked", manage, leaked::search)
        .get("/keys/leaked/{key_id}", manage, leaked::confirm)
        .post("/keys/leaked/{key_id}", manage, leaked::report)
        .get("/keys/leaked/{key_id}/next", manage, leaked::next_steps)
        .get("/keys/{key_id}", read, show)
        .post("/keys/{key_id}/rename", manage, rename)
        .post("/keys/{key_id}/deactivate", manage, deactivate)
        .post("/keys/{key_id}/reactivate", manage, reactivate)
        .get("/keys/{key_id}/archive", manage, archive_form)
        .post("/keys/{key_id}/archive", manage, archive)
        .post(
            "/keys/{key_id}/schedule-archive",
            manage,
            schedule::schedule_archive,
        )
        .merge(offboarding::routes())
}

/// A flag as templates show it.
pub struct FlagView {
    pub code: &'static str,
    pub label: &'static str,
    pub explanation: String,
    pub count: usize,
}

/// How many keys of the organization carry each flag, and the rotation age the "old" flag
/// uses: the overview's numbers, from the same per-snapshot index the keys page filters.
pub async fn flag_counts(state: &AppState) -> Result<(Vec<(Flag, usize)>, u32), ApiError> {
    let rotation_days = state.config.key_rotation_days;
    let (_, index) = state.org.key_index(rotation_days).await?;
    Ok((index.counts.clone(), rotation_days))
}

/// The hygiene flags as of now.
pub(crate) async fn hygiene(state: &AppState) -> Hygiene {
    state.org.hygiene(state.config.key_rotation_days).await
}

/// "Recent" use, which a confirmation highlights: today or yesterday.
const RECENT_USE_DAYS: i64 = 1;
/// The tokens a confirmation shows are those of the last this many days.
pub const USE_WINDOW_DAYS: i64 = 7;

/// A key's recent use as a confirmation shows it before the key is stopped.
#[derive(Clone)]
pub struct KeyUse {
    /// "Last used yesterday (Dec 2) · 26,104,000 tokens in the last 7 days".
    pub text: String,
    /// Used today or yesterday: whatever uses it will break.
    pub recent: bool,
}

/// The recent use of every key, read once per request (two reads of the local usage store,
/// whatever the number of keys shown).
pub struct RecentUse {
    today: chrono::NaiveDate,
    last_used: Arc<std::collections::HashMap<String, chrono::NaiveDate>>,
    tokens: std::collections::HashMap<String, i64>,
    /// `None` until the usage store has synced once.
    synced: bool,
}

impl RecentUse {
    /// The recent use of the keys `ids` (one key: its own days; more: one query for all).
    pub async fn read(state: &AppState, ids: &[&str]) -> RecentUse {
        let today = state.clock.now().date_naive();
        let synced = matches!(
            state
                .usage
                .progress(crate::usage_store::Kind::UsageDay)
                .await,
            Ok(Some(_))
        );
        let since = today - Duration::days(USE_WINDOW_DAYS - 1);
        let tokens = match ids {
            [one] => state.usage.key_days(one, since).await.map(|days| {
                std::iter::once((
                    (*one).to_owned(),
                    days.iter().map(|(_, input, output)| input + output).sum(),
                ))
                .collect()
            }),
            _ => state.usage.key_tokens_since(since).await,
        }
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "recent key use could not be read");
            Default::default()
        });
        RecentUse {
            today,
            last_used: hygiene(state).await.last_used,
            tokens,
            synced,
        }
    }

    pub fn of(&self, key_id: &str) -> KeyUse {
        if !self.synced {
            return KeyUse {
                text: "Recent use not known yet: usage has not been read from Anthropic".into(),
                recent: false,
            };
        }
        let tokens = self.tokens.get(key_id).copied().unwrap_or(0);
        let tokens = format!(
            "{} tokens in the last {USE_WINDOW_DAYS} days",
            crate::web::usage::thousands(tokens)
        );
        match self.last_used.get(key_id) {
            None => KeyUse {
                text: format!("Not used in the usage data Orgkeeper holds · {tokens}"),
                recent: false,
            },
            Some(day) => {
                let ago = (self.today - *day).num_days();
                let when = match ago {
                    0 => "today".to_owned(),
                    1 => "yesterday".to_owned(),
                    n => format!("{n} days ago"),
                };
                KeyUse {
                    text: format!("Last used {when} ({}) · {tokens}", day.format("%b %-d, %Y")),
                    recent: ago <= RECENT_USE_DAYS,
                }
            }
        }
    }
}

/// The names that describe keys, from the current snapshot.
pub(crate) fn names(state: &AppState) -> Arc<Names> {
    Names::of(&state.org.snapshot())
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Team leads see only keys of their workspaces; organization-scoped keys belong to none.
pub(crate) fn visible(ctx: &Ctx, key: &ApiKey) -> bool {
    ctx.caller().may_reach_key(key)
}

/// The key, if this person may reach it (a refusal is audited, like every other denial).
pub(crate) async fn load_key(ctx: &Ctx, id: &str) -> AppResult<ApiKey> {
    Ok(service::keys::find(&ctx.state, &ctx.caller(), id).await?)
}

/// One status change of one key by the person signed in (see `service::keys::set_status`).
pub(crate) async fn set_status(
    ctx: &Ctx,
    key: &ApiKey,
    to: ApiKeyStatus,
    context: Value,
) -> AppResult<Result<StatusChanged, ApiError>> {
    Ok(service::keys::set_status(&ctx.state, &ctx.caller(), key.into(), to, context).await?)
}

/// A key as the pages show it.
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub workspace: String,
    pub creator: String,
    pub creator_id: String,
    pub creator_gone: bool,
    /// Whose the key is: a person's, a service account's or the workspace's (§5.6).
    pub whose: String,
    /// A personal key: it acts with its person's permissions.
    pub personal: bool,
    pub created: String,
    pub created_full: String,
    pub expires: String,
    /// When it expires (RFC 3339), for the page's `<time>`.
    pub expires_at: Option<String>,
    pub age_days: i64,
    pub status: String,
    pub live: bool,
    pub flags: Vec<FlagView>,
}

/// A key as the pages show it, described with `names` and flagged by `hygiene`.
pub(crate) fn row(names: &Names, key: &ApiKey, hygiene: &Hygiene) -> KeyRow {
    let (creator, creator_id, creator_gone) = match &key.created_by {
        None => ("unknown".to_owned(), String::new(), false),
        Some(by) => match names.users.get(&*by.id) {
            Some(name) => (name.clone(), by.id.to_string(), false),
            None if &*by.kind == "service_account" => (
                crate::labels::SERVICE_ACCOUNT.to_owned(),
                by.id.to_string(),
                false,
            ),
            None => match names.former.get(&*by.id) {
                // Removed members keep their name.
                Some(name) => (format!("{name} (former member)"), by.id.to_string(), true),
                None if names.users_known => (
                    crate::labels::FORMER_MEMBER.to_owned(),
                    by.id.to_string(),
                    true,
                ),
                None => (by.id.to_string(), by.id.to_string(), false),
            },
        },
    };
    KeyRow {
        whose: names.whose(key),
        personal: matches!(key.kind(), KeyKind::Personal { .. }),
        id: key.id.clone(),
        name: key.name.clone(),
        hint: key.partial_key_hint.clone().unwrap_or_default(),
        workspace: names.workspace(key),
        creator,
        creator_id,
        creator_gone,
        created: crate::labels::day_label(&key.created_at),
        // To the second, as UTC (`…Z`): the page lists fifty of them.
        created_full: key
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        expires: key
            .expires_at
            .as_ref()
            .map(crate::labels::day_label)
            .unwrap_or_else(|| "never".into()),
        expires_at: key
            .expires_at
            .as_ref()
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        age_days: (hygiene.now - key.created_at).num_days(),
        status: key.status.as_str().to_owned(),
        live: is_live(key),
        flags: hygiene
            .flags(key)
            .into_iter()
            .map(|f| FlagView {
                code: f.code(),
                label: f.label(),
                explanation: f.explanation(hygiene.rotation_days),
                count: 0,
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Inventory

#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub workspace: String,
    #[serde(default)]
    pub creator: String,
    #[serde(default)]
    pub flag: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub page: Option<usize>,
}

impl ListQuery {
    /// The query string of these filters on another page.
    fn link(&self, page: usize) -> String {
        let page = if page > 1 {
            page.to_string()
        } else {
            String::new()
        };
        present::link(
            "/keys",
            &[
                ("status", &self.status),
                ("workspace", &self.workspace),
                ("creator", &self.creator),
                ("flag", &self.flag),
                ("q", &self.q),
                ("page", &page),
            ],
        )
    }

    /// Whether any filter is set (the page of an unfiltered list is cut without looking at
    /// every key).
    fn filters(&self) -> bool {
        [
            &self.status,
            &self.workspace,
            &self.creator,
            &self.flag,
            &self.q,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }

    /// The filters as one test, normalised once per request rather than once per key.
    /// `creators`: the ids the "created by" text stands for, when it is a name or email.
    fn matcher<'a>(
        &'a self,
        creators: Option<&'a HashSet<String>>,
    ) -> impl Fn(&ApiKey, &[Flag]) -> bool + 'a {
        let creator = self.creator.trim();
        let q = self.q.trim().to_lowercase();
        // An unknown flag matches nothing.
        let flag = (!self.flag.is_empty()).then(|| Flag::parse(&self.flag));
        move |key, flags| {
            // The flags first: they come with the index, so a key they rule out is not read
            // (a filter over 200,000 keys on `xlarge`).
            match flag {
                Some(Some(wanted)) if !flags.contains(&wanted) => return false,
                Some(None) => return false,
                _ => {}
            }
            if !self.status.is_empty() && key.status.as_str() != self.status {
                return false;
            }
            if !self.workspace.is_empty() {
                let scope = match (&key.scope, key.workspace_id()) {
                    (Some(ApiKeyScope::Organization), _) => "organization",
                    (_, Some(id)) => id,
                    (_, None) => "default",
                };
                if scope != self.workspace {
                    return false;
                }
            }
            if !creator.is_empty() {
                let by = key.created_by.as_ref().map(|c| &*c.id);
                let found = by == Some(creator)
                    || creators.is_some_and(|ids| by.is_some_and(|id| ids.contains(id)));
                if !found {
                    return false;
                }
            }
            if !q.is_empty() {
                let hint = key.partial_key_hint.as_deref().unwrap_or("").to_lowercase();
                if !key.name.to_lowercase().contains(&q) && !hint.contains(&q) {
                    return false;
                }
            }
            true
        }
    }
}

pub struct Choice {
    pub value: String,
    pub label: String,
}

/// The table part of the inventory, also the htmx partial.
pub struct Results {
    pub query: ListQuery,
    pub rows: Vec<KeyRow>,
    pub total: usize,
    pub visible_total: usize,
    pub page: usize,
    pub pages: usize,
    pub previous_link: Option<String>,
    pub next_link: Option<String>,
    pub can_manage: bool,
}

#[derive(Template)]
#[template(path = "keys/index.html")]
struct IndexPage {
    layout: Layout,
    query: ListQuery,
    results: Results,
    flags: Vec<FlagView>,
    workspaces: Vec<Choice>,
    /// Too many workspaces to list: the filter is a field for a name or id.
    workspaces_typed: bool,
    usage_synced: bool,
    console_url: &'static str,
}

#[derive(Template)]
#[template(path = "keys/_results.html")]
struct ResultsPartial<'a> {
    results: &'a Results,
}

pub async fn index(ctx: Ctx, Query(mut query): Query<ListQuery>) -> AppResult<Response> {
    let (snapshot, index) = ctx
        .state
        .org
        .key_index(ctx.state.config.key_rotation_days)
        .await?;
    // Where the workspace is typed (too many to list), its name is as good as its id.
    let typed = query.workspace.trim();
    if !typed.is_empty() && !index.workspaces.iter().any(|(id, _)| id == typed) {
        if let Some(w) = snapshot
            .workspaces
            .iter()
            .find(|w| w.name.eq_ignore_ascii_case(typed))
        {
            query.workspace = w.id.clone();
        }
    }
    let (hygiene, names) = (hygiene(&ctx.state).await, Names::of(&snapshot));
    let scoped = ctx.workspace_scope().is_some();
    let creators =
        (!query.creator.trim().is_empty()).then(|| creators_named(&names, &query.creator));

    // Newest first; filter the precomputed list, then cut one page. The whole organization's
    // list is never copied: an unfiltered page is a slice of it.
    let all = index
        .keys
        .iter()
        .map(|(at, flags)| (&snapshot.keys[*at as usize], flags.as_slice()));
    let visible_keys: Vec<(&ApiKey, &[Flag])> = if scoped {
        all.clone().filter(|(k, _)| visible(&ctx, k)).collect()
    } else {
        Vec::new()
    };
    let (visible_total, counts) = if scoped {
        let counts = count_flags(visible_keys.iter().map(|(_, flags)| flags));
        (visible_keys.len(), counts)
    } else {
        (index.keys.len(), index.counts.clone())
    };
    // `None`: every key matches (an unfiltered page is cut from the index itself).
    let matching: Option<Vec<&ApiKey>> = (query.filters() || scoped).then(|| {
        let matches = query.matcher(creators.as_ref());
        if scoped {
            visible_keys
                .iter()
                .filter(|(k, flags)| matches(k, flags))
                .map(|(k, _)| *k)
                .collect()
        } else {
            all.clone()
                .filter(|(k, flags)| matches(k, flags))
                .map(|(k, _)| k)
                .collect()
        }
    });
    let total = matching.as_ref().map_or(visible_total, Vec::len);
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let skip = (page - 1) * PAGE_SIZE;
    let page_keys: Vec<&ApiKey> = match &matching {
        Some(keys) => keys.iter().skip(skip).take(PAGE_SIZE).copied().collect(),
        None => all.skip(skip).take(PAGE_SIZE).map(|(k, _)| k).collect(),
    };
    let rows = page_keys.iter().map(|k| row(&names, k, &hygiene)).collect();
    let results = Results {
        previous_link: (page > 1).then(|| query.link(page - 1)),
        next_link: (page < pages).then(|| query.link(page + 1)),
        query: query.clone(),
        rows,
        total,
        visible_total,
        page,
        pages,
        can_manage: ctx.can(Permission::ManageOrganization),
    };
    if ctx.client.htmx {
        return render(StatusCode::OK, &ResultsPartial { results: &results });
    }

    // Workspace choices come from the keys the reader may see. People are searched by name
    // (a list of every creator would be thousands of options, and name people a team lead
    // cannot otherwise see).
    let workspace_ids = if scoped {
        workspace_choices(visible_keys.iter().map(|(k, _)| *k), &names)
    } else {
        index.workspaces.clone()
    };

    let page = IndexPage {
        layout: ctx.layout("API keys", "keys").await,
        query,
        results,
        flags: counts
            .into_iter()
            .map(|(f, count)| FlagView {
                code: f.code(),
                label: f.label(),
                explanation: f.explanation(hygiene.rotation_days),
                count,
            })
            .collect(),
        workspaces_typed: workspace_ids.len() > present::MOST_CHOICES,
        workspaces: if workspace_ids.len() > present::MOST_CHOICES {
            Vec::new()
        } else {
            workspace_ids
                .into_iter()
                .map(|(value, label)| Choice { value, label })
                .collect()
        },
        usage_synced: !hygiene.last_used.is_empty(),
        console_url: CONSOLE_KEYS_URL,
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------------------------
// One key

pub struct UsageDay {
    pub day: String,
    pub input: u64,
    pub output: u64,
}

impl UsageDay {
    /// "16,209,900": counts as people read them.
    pub fn grouped(n: impl std::borrow::Borrow<u64>) -> String {
        crate::web::usage::thousands(i64::try_from(*n.borrow()).unwrap_or(i64::MAX))
    }
}

/// The key's last 30 days from the local usage store (kept current by the usage job), so the
/// page waits on no upstream call. `Err` before the store has ever synced.
/// The key's days of use, or `None` before the first usage sync (a normal state, not an error).
async fn key_usage(state: &AppState, key_id: &str) -> Result<Option<Vec<UsageDay>>, String> {
    let synced = state
        .usage
        .progress(crate::usage_store::Kind::UsageDay)
        .await
        .map_err(|e| e.to_string())?;
    if synced.is_none() {
        return Ok(None);
    }
    let since = state.clock.now().date_naive() - Duration::days(29);
    let days = state
        .usage
        .key_days(key_id, since)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(
        days.into_iter()
            .map(|(day, input, output)| UsageDay {
                day: chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map_or(day, crate::labels::calendar_day),
                input: u64::try_from(input).unwrap_or(0),
                output: u64::try_from(output).unwrap_or(0),
            })
            .collect(),
    ))
}

#[derive(Template)]
#[template(path = "keys/show.html")]
struct ShowPage {
    layout: Layout,
    row: KeyRow,
    usage: Vec<UsageDay>,
    usage_total_input: u64,
    usage_total_output: u64,
    usage_pending: bool,
    usage_error: Option<String>,
    history: Option<Vec<Record>>,
    schedule: Option<service::schedules::Schedule>,
    can_manage: bool,
    error: Option<String>,
    rename_value: String,
    console_url: &'static str,
    status: String,
    key_use: KeyUse,
}

/// The newest `limit` changes among `records` (newest first), one row each: an intent whose
/// outcome is listed is left out (the outcome says what happened), one still unanswered stays.
fn one_row_per_change(mut records: Vec<Record>, limit: usize) -> Vec<Record> {
    let answered: HashSet<i64> = records.iter().filter_map(|r| r.intent_seq).collect();
    records.retain(|r| !answered.contains(&r.seq));
    records.truncate(limit);
    records
}

async fn render_show(
    ctx: &Ctx,
    key: &ApiKey,
    status: StatusCode,
    error: Option<String>,
    rename_value: Option<String>,
) -> AppResult<Response> {
    let (hygiene, names) = (hygiene(&ctx.state).await, names(&ctx.state));
    let (usage, usage_pending, usage_error) = match key_usage(&ctx.state, &key.id).await {
        Ok(Some(usage)) => (usage, false, None),
        Ok(None) => (Vec::new(), true, None),
        Err(error) => (Vec::new(), false, Some(error)),
    };
    let history = if ctx.can(Permission::ViewAudit) {
        let filter = Filter {
            target: Some(key.id.clone()),
            ..Default::default()
        };
        Some(one_row_per_change(
            ctx.state.audit.query(&filter, 40, 0).await?.0,
            20,
        ))
    } else {
        None
    };
    let page = ShowPage {
        layout: ctx.layout(format!("API key {}", key.name), "keys").await,
        row: row(&names, key, &hygiene),
        usage_total_input: usage.iter().map(|u| u.input).sum(),
        usage_total_output: usage.iter().map(|u| u.output).sum(),
        usage,
        usage_pending,
        usage_error,
        history,
        schedule: service::schedules::pending_for(&ctx.state, &key.id).await?,
        can_manage: ctx.can(Permission::ManageOrganization),
        error,
        rename_value: rename_value.unwrap_or_else(|| key.name.clone()),
        console_url: CONSOLE_KEYS_URL,
        status: key.status.as_str().to_owned(),
        key_use: RecentUse::read(&ctx.state, &[&key.id]).await.of(&key.id),
    };
    render(status, &page)
}

pub async fn show(ctx: Ctx, Path(key_id): Path<String>) -> AppResult<Response> {
    let key = load_key(&ctx, &key_id).await?;
    render_show(&ctx, &key, StatusCode::OK, None, None).await
}

/// After a change: back to the key page with a notice, or the page again explaining why not.
async fn finish(
    ctx: &Ctx,
    key: &ApiKey,
    result: Result<(), ApiError>,
    success: String,
    typed_name: Option<String>,
) -> AppResult<Response> {
    match result {
        Ok(_) => {
            ctx.flash("success", success).await;
            Ok(Redirect::to(&format!("/keys/{}", key.id)).into_response())
        }
        Err(error) => {
            let fresh = load_key(ctx, &key.id).await.unwrap_or_else(|_| key.clone());
            let status = failure_status(&error);
            render_show(ctx, &fresh, status, Some(error.user_message()), typed_name).await
        }
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

pub async fn rename(
    ctx: Ctx,
    Path(key_id): Path<String>,
    Form(form): Form<RenameForm>,
) -> AppResult<Response> {
    let key = load_key(&ctx, &key_id).await?;
    let result = match service::keys::rename(&ctx.state, &ctx.caller(), &key, &form.name).await {
        Err(ServiceError::Invalid(message)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render_show(&ctx, &key, status, Some(message), Some(form.name)).await;
        }
        result => result?.map(|_| ()),
    };
    let message = format!("The key is now called {}.", form.name.trim());
    finish(&ctx, &key, result, message, Some(form.name)).await
}

pub async fn deactivate(ctx: Ctx, Path(key_id): Path<String>) -> AppResult<Response> {
    let key = load_key(&ctx, &key_id).await?;
    let result = set_status(&ctx, &key, ApiKeyStatus::Inactive, json!({}))
        .await?
        .map(|_| ());
    let message = format!(
        "{} is deactivated: requests with it are refused until it is reactivated.",
        key.name
    );
    finish(&ctx, &key, result, message, None).await
}

pub async fn reactivate(ctx: Ctx, Path(key_id): Path<String>) -> AppResult<Response> {
    let key = load_key(&ctx, &key_id).await?;
    let result = set_status(&ctx, &key, ApiKeyStatus::Active, json!({})).await?;
    let mut message = format!("{} works again.", key.name);
    if result.as_ref().is_ok_and(|done| done.schedule_cancelled) {
        message.push_str(" Its scheduled archive was cancelled.");
    }
    let result = result.map(|_| ());
    finish(&ctx, &key, result, message, None).await
}

#[derive(Template)]
#[template(path = "keys/archive.html")]
struct ArchivePage {
    layout: Layout,
    row: KeyRow,
    typed: String,
    error: Option<String>,
    /// The latest state could not be checked: why.
    unchecked: Option<String>,
    /// Why there is nothing to archive any more.
    gone: Option<String>,
    key_use: KeyUse,
}

async fn render_archive(
    ctx: &Ctx,
    key: &ApiKey,
    status: StatusCode,
    typed: String,
    error: Option<String>,
) -> AppResult<Response> {
    render_archive_checked(ctx, key, status, typed, error, None, None).await
}

async fn render_archive_checked(
    ctx: &Ctx,
    key: &ApiKey,
    status: StatusCode,
    typed: String,
    error: Option<String>,
    unchecked: Option<String>,
    gone: Option<String>,
) -> AppResult<Response> {
    let (hygiene, names) = (hygiene(&ctx.state).await, names(&ctx.state));
    let page = ArchivePage {
        layout: ctx.layout(format!("Archive {}", key.name), "keys").await,
        row: row(&names, key, &hygiene),
        typed,
        error,
        unchecked,
        gone,
        key_use: RecentUse::read(&ctx.state, &[&key.id]).await.of(&key.id),
    };
    render(status, &page)
}

/// The server-rendered confirmation of an irreversible archive, from the key as it is now.
pub async fn archive_form(ctx: Ctx, Path(key_id): Path<String>) -> AppResult<Response> {
    let key = load_key(&ctx, &key_id).await?;
    let touched = [crate::org::Touched::Key(key.id.clone())];
    let checked = service::sync::check_current(&ctx.state, &touched).await;
    let key = load_key(&ctx, &key_id).await?;
    let gone = (key.status == ApiKeyStatus::Archived).then(|| {
        let outside = checked
            .as_ref()
            .is_ok_and(|c| c.keys.iter().any(|d| d.observed));
        if outside {
            format!(
                "This key was already archived outside Orgkeeper (noticed {}, and recorded in the audit log), so there is nothing to archive.",
                crate::labels::moment_label(&ctx.state.clock.now())
            )
        } else {
            "This key is already archived, so there is nothing to archive.".to_owned()
        }
    });
    let unchecked = checked.err();
    render_archive_checked(
        &ctx,
        &key,
        StatusCode::OK,
        String::new(),
        None,
        unchecked,
        gone,
    )
    .await
}

#[derive(Deserialize)]
pub struct ArchiveForm {
    #[serde(default)]
    confirm_name: String,
}

pub async fn archive(
    ctx: Ctx,
    Path(key_id): Path<String>,
    Form(form): Form<ArchiveForm>,
) -> AppResult<Response> {
    let key = load_key(&ctx, &key_id).await?;
    if form.confirm_name != key.name {
        return render_archive(
            &ctx,
            &key,
            StatusCode::UNPROCESSABLE_ENTITY,
            form.confirm_name,
            Some("The name you typed is not the key's name, so nothing was archived. Type it exactly, including capitals and spaces.".into()),
        )
        .await;
    }
    let result = set_status(&ctx, &key, ApiKeyStatus::Archived, json!({})).await?;
    match result {
        Ok(_) => {
            ctx.flash("success", format!("{} is archived for good.", key.name))
                .await;
            Ok(Redirect::to(&format!("/keys/{}", key.id)).into_response())
        }
        Err(error) => {
            let status = failure_status(&error);
            render_archive(
                &ctx,
                &key,
                status,
                form.confirm_name,
                Some(error.user_message()),
            )
            .await
        }
    }
}
