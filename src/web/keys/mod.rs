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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::web::extract::Form;
use crate::web::extract::{Path, Query};
use crate::web::routes::{Access::Needs, Routes};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::Layout;
use super::error::{AppError, AppResult};
use super::{AppState, Ctx};
use crate::anthropic::{ApiError, ApiKey, ApiKeyScope, ApiKeyStatus, KeyKind, User};
use crate::audit::{Action, Filter, Outcome, Record, Target};
use crate::auth::Permission;
use crate::org::Snapshot;
use crate::service;
use crate::service::keys::StatusChanged;
pub(crate) use crate::web::page::{failure_status, render};

/// Where keys are created: the Admin API cannot.
pub const CONSOLE_KEYS_URL: &str = "https://console.anthropic.com/settings/keys";
const PAGE_SIZE: usize = 50;
/// A key that expires within this many days is flagged.
const EXPIRING_SOON_DAYS: i64 = 14;
/// A key without use for this many days is flagged (when the usage store knows).
const UNUSED_DAYS: i64 = 30;

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

// ---------------------------------------------------------------------------------------------
// Hygiene flags

/// A hygiene problem of a key. Only live keys (active or inactive) are flagged: archived and
/// expired keys cannot be used any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    NoExpiry,
    RotationDue,
    ExpiringSoon,
    CreatorGone,
    Unused,
    ArchivedWorkspace,
}

impl Flag {
    pub const ALL: [Flag; 6] = [
        Flag::NoExpiry,
        Flag::RotationDue,
        Flag::ExpiringSoon,
        Flag::CreatorGone,
        Flag::Unused,
        Flag::ArchivedWorkspace,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Flag::NoExpiry => "no_expiry",
            Flag::RotationDue => "rotation_due",
            Flag::ExpiringSoon => "expiring_soon",
            Flag::CreatorGone => "creator_gone",
            Flag::Unused => "unused",
            Flag::ArchivedWorkspace => "archived_workspace",
        }
    }

    pub fn parse(code: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Flag::NoExpiry => "No expiry",
            Flag::RotationDue => "Rotation due",
            Flag::ExpiringSoon => "Expiring soon",
            Flag::CreatorGone => "Creator left",
            Flag::Unused => "Unused",
            Flag::ArchivedWorkspace => "Archived workspace",
        }
    }

    /// The hover text and legend entry.
    pub fn explanation(self, rotation_days: u32) -> String {
        match self {
            Flag::NoExpiry => "The key never expires: if it leaks, it works until someone deactivates it.".into(),
            Flag::RotationDue => format!("The key is older than {rotation_days} days, the rotation period set for this dashboard: replace it with a new key."),
            Flag::ExpiringSoon => format!("The key expires within {EXPIRING_SOON_DAYS} days: whatever uses it will stop working unless it gets a new key."),
            Flag::CreatorGone => "The person who created the key is no longer a member of the organization. Workspace and service-account keys keep working after their creator leaves.".into(),
            Flag::Unused => format!("The key has not been used for {UNUSED_DAYS} days or more (from the usage data synced to this dashboard): it may no longer be needed."),
            Flag::ArchivedWorkspace => "The key belongs to an archived workspace but is not archived itself.".into(),
        }
    }
}

/// A flag as templates show it.
pub struct FlagView {
    pub code: &'static str,
    pub label: &'static str,
    pub explanation: String,
    pub count: usize,
}

/// What the flags are computed from.
pub struct Hygiene {
    pub now: DateTime<Utc>,
    pub rotation_days: u32,
    /// Current member ids; `None` before the model has synced (then nobody is flagged as
    /// gone).
    pub members: Option<Arc<HashSet<String>>>,
    pub archived_workspaces: Arc<HashSet<String>>,
    /// Each key's last day of use. Empty means "not synced yet": unknown, not unused.
    pub last_used: Arc<HashMap<String, NaiveDate>>,
}

/// What the flags need from the model, derived once per snapshot.
struct HygieneSets {
    members: Option<Arc<HashSet<String>>>,
    archived_workspaces: Arc<HashSet<String>>,
}

/// Each key's last day of use, read from the usage store once per snapshot (the store
/// changes once a minute, like the snapshot).
struct LastUsed(Arc<HashMap<String, NaiveDate>>);

impl Hygiene {
    pub async fn load(state: &AppState) -> Hygiene {
        let snapshot = state.org.snapshot();
        let sets = snapshot.derived(|s| HygieneSets {
            members: s
                .synced_at
                .map(|_| Arc::new(s.users.iter().map(|u| u.id.clone()).collect())),
            archived_workspaces: Arc::new(
                s.workspaces
                    .iter()
                    .filter(|w| w.is_archived())
                    .map(|w| w.id.clone())
                    .collect(),
            ),
        });
        let last_used = match snapshot.cached::<LastUsed>() {
            Some(known) => known.0.clone(),
            None => match crate::usage_store::key_last_used(&state.db).await {
                Ok(map) => snapshot.keep(LastUsed(Arc::new(map))).0.clone(),
                Err(error) => {
                    tracing::warn!(%error, "key usage could not be read; no key is flagged unused");
                    Arc::default()
                }
            },
        };
        Hygiene {
            now: state.clock.now(),
            rotation_days: state.config.key_rotation_days,
            members: sets.members.clone(),
            archived_workspaces: sets.archived_workspaces.clone(),
            last_used,
        }
    }

    pub fn flags(&self, key: &ApiKey) -> Vec<Flag> {
        let mut flags = Vec::new();
        if !is_live(key) {
            return flags;
        }
        match key.expires_at {
            None => flags.push(Flag::NoExpiry),
            Some(at) if at > self.now && at <= self.now + Duration::days(EXPIRING_SOON_DAYS) => {
                flags.push(Flag::ExpiringSoon)
            }
            Some(_) => {}
        }
        if key.created_at < self.now - Duration::days(i64::from(self.rotation_days)) {
            flags.push(Flag::RotationDue);
        }
        if let (Some(members), Some(creator)) = (&self.members, &key.created_by) {
            let is_user = creator.kind.is_empty() || creator.kind == "user";
            // A personal key made for someone else acts as them: its creator leaving is moot.
            let acts_as_other =
                matches!(key.kind(), KeyKind::Personal { user_id } if user_id != creator.id);
            if is_user && !acts_as_other && !members.contains(&creator.id) {
                flags.push(Flag::CreatorGone);
            }
        }
        if self.is_unused(key) {
            flags.push(Flag::Unused);
        }
        if key
            .workspace_id()
            .is_some_and(|w| self.archived_workspaces.contains(w))
        {
            flags.push(Flag::ArchivedWorkspace);
        }
        flags
    }

    fn is_unused(&self, key: &ApiKey) -> bool {
        if self.last_used.is_empty() {
            return false;
        }
        let cutoff = (self.now - Duration::days(UNUSED_DAYS)).date_naive();
        match self.last_used.get(&key.id) {
            Some(day) => *day < cutoff,
            // Synced, and no use on record: unused once the key is old enough to have been.
            None => key.created_at.date_naive() < cutoff,
        }
    }
}

/// How many keys carry each flag (every flag listed, zeros included), for the inventory and
/// the overview.
/// How many keys of the organization carry each flag, and the rotation age the "old" flag
/// uses: the overview's numbers, from the same per-snapshot index the keys page filters.
pub async fn flag_counts(state: &AppState) -> Result<(Vec<(Flag, usize)>, u32), ApiError> {
    let (_, index) = KeyIndex::load(state).await?;
    Ok((index.counts.clone(), state.config.key_rotation_days))
}

/// How many keys carry each flag, given each key's flags.
fn count_flags<F: AsRef<[Flag]>>(per_key: impl IntoIterator<Item = F>) -> Vec<(Flag, usize)> {
    let mut counts: Vec<(Flag, usize)> = Flag::ALL.iter().map(|f| (*f, 0)).collect();
    for flags in per_key {
        for flag in flags.as_ref() {
            if let Some(entry) = counts.iter_mut().find(|(f, _)| f == flag) {
                entry.1 += 1;
            }
        }
    }
    counts
}

/// Active or inactive: a key that works or can be made to work again.
pub fn is_live(key: &ApiKey) -> bool {
    matches!(key.status, ApiKeyStatus::Active | ApiKeyStatus::Inactive)
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Team leads see only keys of their workspaces; organization-scoped keys belong to none.
pub(crate) fn visible(ctx: &Ctx, key: &ApiKey) -> bool {
    match key.workspace_id() {
        Some(workspace) => ctx.may_read_workspace(workspace),
        None => ctx.workspace_scope().is_none(),
    }
}

pub(crate) fn key_target(key: &ApiKey) -> Option<Target> {
    service::keys::key_target(&key.id, &key.name)
}

/// The key from the cached list, checked against the reader's workspaces (a refusal is
/// audited, like every other denial).
pub(crate) async fn load_key(ctx: &Ctx, id: &str) -> AppResult<ApiKey> {
    let keys = ctx.state.org.api_keys().await?;
    let key = keys
        .iter()
        .find(|k| k.id == id)
        .cloned()
        .ok_or(AppError::NotFound)?;
    if !visible(ctx, &key) {
        ctx.audit(
            Action::AccessDenied,
            key_target(&key),
            json!({ "reason": "the key is outside the account's workspaces" }),
            Outcome::Denied,
        )
        .await?;
        return Err(AppError::Forbidden);
    }
    Ok(key)
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

pub(crate) fn day(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
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
    pub age_days: i64,
    pub status: String,
    pub live: bool,
    pub flags: Vec<FlagView>,
}

/// Names the page needs to describe keys: workspaces and members.
pub(crate) struct Names {
    workspaces: HashMap<String, String>,
    users: HashMap<String, String>,
    /// People who left, by id: keys they made still say who they were.
    former: HashMap<String, String>,
    /// Lowercased emails of members and former members, for searching by person.
    emails: HashMap<String, String>,
    users_known: bool,
}

impl Names {
    /// Built once per model snapshot and shared by every page until the next change.
    pub(crate) async fn load(state: &AppState) -> Arc<Names> {
        state.org.snapshot().derived(Names::build)
    }

    fn build(snapshot: &Snapshot) -> Names {
        let label = |u: &User| {
            if u.name.is_empty() {
                u.email.clone()
            } else {
                u.name.clone()
            }
        };
        Names {
            workspaces: snapshot
                .workspaces
                .iter()
                .map(|w| {
                    let suffix = if w.is_archived() { " (archived)" } else { "" };
                    (w.id.clone(), format!("{}{suffix}", w.name))
                })
                .collect(),
            users: snapshot
                .users
                .iter()
                .map(|u| (u.id.clone(), label(u)))
                .collect(),
            former: snapshot
                .former
                .values()
                .map(|f| (f.user.id.clone(), label(&f.user)))
                .collect(),
            emails: snapshot
                .users
                .iter()
                .chain(snapshot.former.values().map(|f| &f.user))
                .map(|u| (u.id.clone(), u.email.to_lowercase()))
                .collect(),
            users_known: snapshot.synced_at.is_some(),
        }
    }

    /// (id, name, lowercased email) of everyone who is or was a member.
    fn people(&self) -> impl Iterator<Item = (&String, &String, &str)> {
        self.users
            .iter()
            .chain(self.former.iter())
            .map(|(id, label)| {
                let email = self.emails.get(id).map(String::as_str).unwrap_or("");
                (id, label, email)
            })
    }

    pub(crate) fn workspace(&self, key: &ApiKey) -> String {
        match (&key.scope, key.workspace_id()) {
            (Some(ApiKeyScope::Organization), _) => "Organization".into(),
            (_, Some(id)) => self
                .workspaces
                .get(id)
                .cloned()
                .unwrap_or_else(|| id.to_owned()),
            (_, None) => "Default workspace".into(),
        }
    }

    /// Whose a key is, in plain words ("Personal key of Ada Lovelace, all workspaces").
    pub(crate) fn whose(&self, key: &ApiKey) -> String {
        let reach = if key.is_organization_scoped() {
            ", all their workspaces"
        } else {
            ""
        };
        match key.kind() {
            KeyKind::Personal { user_id } => {
                let name = self.users.get(user_id).map_or(user_id, String::as_str);
                format!("Personal key of {name}{reach}")
            }
            KeyKind::ServiceAccount { service_account_id } => {
                format!("Service account {service_account_id}{reach}")
            }
            KeyKind::Workspace => "Workspace key (nobody's)".into(),
            KeyKind::Unknown => "Unknown owner".into(),
        }
    }

    pub(crate) fn row(&self, key: &ApiKey, hygiene: &Hygiene) -> KeyRow {
        let (creator, creator_id, creator_gone) = match &key.created_by {
            None => ("unknown".to_owned(), String::new(), false),
            Some(by) => match self.users.get(&by.id) {
                Some(name) => (name.clone(), by.id.clone(), false),
                None if by.kind == "service_account" => {
                    (format!("service account {}", by.id), by.id.clone(), false)
                }
                None => match self.former.get(&by.id) {
                    // Removed members keep their name.
                    Some(name) => (name.clone(), by.id.clone(), true),
                    None => (by.id.clone(), by.id.clone(), self.users_known),
                },
            },
        };
        KeyRow {
            whose: self.whose(key),
            personal: matches!(key.kind(), KeyKind::Personal { .. }),
            id: key.id.clone(),
            name: key.name.clone(),
            hint: key.partial_key_hint.clone().unwrap_or_default(),
            workspace: self.workspace(key),
            creator,
            creator_id,
            creator_gone,
            created: day(&key.created_at),
            created_full: key.created_at.to_rfc3339(),
            expires: key
                .expires_at
                .as_ref()
                .map(day)
                .unwrap_or_else(|| "never".into()),
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
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("status", &self.status),
            ("workspace", &self.workspace),
            ("creator", &self.creator),
            ("flag", &self.flag),
            ("q", &self.q),
        ] {
            if !value.is_empty() {
                out.append_pair(name, value);
            }
        }
        if page > 1 {
            out.append_pair("page", &page.to_string());
        }
        let query = out.finish();
        if query.is_empty() {
            "/keys".into()
        } else {
            format!("/keys?{query}")
        }
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
        move |key, flags| {
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
                let by = key.created_by.as_ref().map(|c| c.id.as_str());
                let found = by == Some(creator)
                    || creators.is_some_and(|ids| by.is_some_and(|id| ids.contains(id)));
                if !found {
                    return false;
                }
            }
            if !self.flag.is_empty() && !flags.iter().any(|f| f.code() == self.flag) {
                return false;
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
    usage_synced: bool,
    console_url: &'static str,
}

#[derive(Template)]
#[template(path = "keys/_results.html")]
struct ResultsPartial<'a> {
    results: &'a Results,
}

/// Every key newest first with its flags, the flag counts and the workspace choices: derived
/// once per snapshot, so a page costs a pass over precomputed rows instead of re-deriving the
/// organization.
struct KeyIndex {
    /// Positions in `Snapshot::keys`, newest first, with each key's flags.
    keys: Vec<(u32, Vec<Flag>)>,
    counts: Vec<(Flag, usize)>,
    /// (filter value, label) of every place a key belongs to, by label.
    workspaces: Vec<(String, String)>,
}

impl KeyIndex {
    /// The model and its index (one snapshot for both: the positions are into its keys).
    async fn load(state: &AppState) -> Result<(Arc<Snapshot>, Arc<KeyIndex>), ApiError> {
        let snapshot = state.org.synced()?;
        if let Some(index) = snapshot.cached::<KeyIndex>() {
            return Ok((snapshot, index));
        }
        let hygiene = Hygiene::load(state).await;
        let names = Names::load(state).await;
        let mut sorted: Vec<u32> = (0..snapshot.keys.len() as u32).collect();
        sorted.sort_by_key(|&at| std::cmp::Reverse(snapshot.keys[at as usize].created_at));
        let keys: Vec<(u32, Vec<Flag>)> = sorted
            .into_iter()
            .map(|at| (at, hygiene.flags(&snapshot.keys[at as usize])))
            .collect();
        let counts = count_flags(keys.iter().map(|(_, flags)| flags));
        let workspaces = workspace_choices(snapshot.keys.iter(), &names);
        let index = snapshot.keep(KeyIndex {
            keys,
            counts,
            workspaces,
        });
        Ok((snapshot, index))
    }
}

/// Where these keys belong, as filter choices sorted by label.
fn workspace_choices<'a>(
    keys: impl Iterator<Item = &'a ApiKey>,
    names: &Names,
) -> Vec<(String, String)> {
    let mut choices: HashMap<&str, String> = HashMap::new();
    for key in keys {
        let value = match (&key.scope, key.workspace_id()) {
            (Some(ApiKeyScope::Organization), _) => "organization",
            (_, Some(id)) => id,
            (_, None) => "default",
        };
        if !choices.contains_key(value) {
            choices.insert(value, names.workspace(key));
        }
    }
    let mut choices: Vec<(String, String)> = choices
        .into_iter()
        .map(|(value, label)| (value.to_owned(), label))
        .collect();
    choices.sort_by_key(|w| w.1.to_lowercase());
    choices
}

/// The people a "created by" text names: an exact id, or members (and former members) whose
/// name or email contains it.
fn creators_named(names: &Names, text: &str) -> HashSet<String> {
    let text = text.trim().to_lowercase();
    names
        .people()
        .filter(|(id, label, email)| {
            id.as_str() == text || label.to_lowercase().contains(&text) || email.contains(&text)
        })
        .map(|(id, _, _)| id.clone())
        .collect()
}

pub async fn index(ctx: Ctx, Query(query): Query<ListQuery>) -> AppResult<Response> {
    ctx.require(Permission::ViewWorkspaces).await?;
    let (snapshot, index) = KeyIndex::load(&ctx.state).await?;
    let (hygiene, names) = (
        Hygiene::load(&ctx.state).await,
        Names::load(&ctx.state).await,
    );
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
    let rows = page_keys.iter().map(|k| names.row(k, &hygiene)).collect();
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
        workspaces: workspace_ids
            .into_iter()
            .map(|(value, label)| Choice { value, label })
            .collect(),
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
async fn key_usage(state: &AppState, key_id: &str) -> Result<Vec<UsageDay>, String> {
    let synced = crate::usage_store::progress(&state.db, crate::usage_store::Kind::UsageDay)
        .await
        .map_err(|e| e.to_string())?;
    if synced.is_none() {
        return Err("Usage has not been read from Anthropic yet; it appears here after the first usage sync, within a minute or two of start-up.".into());
    }
    let since = state.clock.now().date_naive() - Duration::days(29);
    let days = crate::usage_store::key_days(&state.db, key_id, since)
        .await
        .map_err(|e| e.to_string())?;
    Ok(days
        .into_iter()
        .map(|(day, input, output)| UsageDay {
            day,
            input: u64::try_from(input).unwrap_or(0),
            output: u64::try_from(output).unwrap_or(0),
        })
        .collect())
}

#[derive(Template)]
#[template(path = "keys/show.html")]
struct ShowPage {
    layout: Layout,
    row: KeyRow,
    usage: Vec<UsageDay>,
    usage_total_input: u64,
    usage_total_output: u64,
    usage_error: Option<String>,
    history: Option<Vec<Record>>,
    schedule: Option<service::schedules::Schedule>,
    can_manage: bool,
    error: Option<String>,
    rename_value: String,
    console_url: &'static str,
    status: String,
}

async fn render_show(
    ctx: &Ctx,
    key: &ApiKey,
    status: StatusCode,
    error: Option<String>,
    rename_value: Option<String>,
) -> AppResult<Response> {
    let hygiene = Hygiene::load(&ctx.state).await;
    let names = Names::load(&ctx.state).await;
    let (usage, usage_error) = match key_usage(&ctx.state, &key.id).await {
        Ok(usage) => (usage, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    let history = if ctx.can(Permission::ViewAudit) {
        let filter = Filter {
            target: Some(key.id.clone()),
            ..Default::default()
        };
        Some(ctx.state.audit.query(&filter, 20, 0).await?.0)
    } else {
        None
    };
    let page = ShowPage {
        layout: ctx.layout(format!("API key {}", key.name), "keys").await,
        row: names.row(key, &hygiene),
        usage_total_input: usage.iter().map(|u| u.input).sum(),
        usage_total_output: usage.iter().map(|u| u.output).sum(),
        usage,
        usage_error,
        history,
        schedule: service::schedules::pending_for(&ctx.state, &key.id).await?,
        can_manage: ctx.can(Permission::ManageOrganization),
        error,
        rename_value: rename_value.unwrap_or_else(|| key.name.clone()),
        console_url: CONSOLE_KEYS_URL,
        status: key.status.as_str().to_owned(),
    };
    render(status, &page)
}

pub async fn show(ctx: Ctx, Path(key_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ViewWorkspaces).await?;
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
    ctx.require(Permission::ManageOrganization).await?;
    let key = load_key(&ctx, &key_id).await?;
    let name = form.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 500 {
        return render_show(
            &ctx,
            &key,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Give the key a name (at most 500 characters).".into()),
            Some(form.name),
        )
        .await;
    }
    let result = service::keys::rename(&ctx.state, &ctx.caller(), &key, &name)
        .await?
        .map(|_| ());
    let message = format!("The key is now called {name}.");
    finish(&ctx, &key, result, message, Some(form.name)).await
}

pub async fn deactivate(ctx: Ctx, Path(key_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
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
    ctx.require(Permission::ManageOrganization).await?;
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
    let hygiene = Hygiene::load(&ctx.state).await;
    let names = Names::load(&ctx.state).await;
    let page = ArchivePage {
        layout: ctx.layout(format!("Archive {}", key.name), "keys").await,
        row: names.row(key, &hygiene),
        typed,
        error,
        unchecked,
        gone,
    };
    render(status, &page)
}

/// The server-rendered confirmation of an irreversible archive, from the key as it is now.
pub async fn archive_form(ctx: Ctx, Path(key_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let key = load_key(&ctx, &key_id).await?;
    let checked =
        super::org::check_current(&ctx, &[crate::org::Touched::Key(key.id.clone())]).await;
    let key = load_key(&ctx, &key_id).await?;
    let gone = (key.status == ApiKeyStatus::Archived).then(|| {
        let outside = checked
            .as_ref()
            .is_ok_and(|c| c.keys.iter().any(|d| d.observed));
        if outside {
            format!(
                "This key was already archived outside Orgkeeper (noticed {} UTC, and recorded in the audit log), so there is nothing to archive.",
                ctx.state.clock.now().format("%Y-%m-%d %H:%M")
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
    ctx.require(Permission::ManageOrganization).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::ApiKeyCreatedBy;

    fn key(status: ApiKeyStatus, created_days_ago: i64, now: DateTime<Utc>) -> ApiKey {
        ApiKey {
            id: "apikey_1".into(),
            object_type: "api_key".into(),
            name: "k".into(),
            status,
            created_at: now - Duration::days(created_days_ago),
            created_by: Some(ApiKeyCreatedBy {
                id: "user_gone".into(),
                kind: "user".into(),
            }),
            expires_at: None,
            partial_key_hint: None,
            principal: None,
            scope: Some(ApiKeyScope::Workspace {
                workspace_id: "wrkspc_archived".into(),
            }),
            legacy_workspace_id: None,
        }
    }

    fn hygiene(now: DateTime<Utc>) -> Hygiene {
        Hygiene {
            now,
            rotation_days: 90,
            members: Some(Arc::new(HashSet::from(["user_here".to_owned()]))),
            archived_workspaces: Arc::new(HashSet::from(["wrkspc_archived".to_owned()])),
            last_used: Arc::default(),
        }
    }

    #[test]
    fn a_live_key_in_an_archived_workspace_is_flagged_but_an_archived_key_is_not() {
        let now = Utc::now();
        let h = hygiene(now);
        let flags = h.flags(&key(ApiKeyStatus::Active, 100, now));
        for flag in [
            Flag::NoExpiry,
            Flag::RotationDue,
            Flag::CreatorGone,
            Flag::ArchivedWorkspace,
        ] {
            assert!(flags.contains(&flag), "{flag:?} missing from {flags:?}");
        }
        assert!(h.flags(&key(ApiKeyStatus::Archived, 100, now)).is_empty());
    }

    #[test]
    fn no_key_is_unused_until_the_usage_store_has_synced() {
        let now = Utc::now();
        let mut h = hygiene(now);
        let old = key(ApiKeyStatus::Active, 100, now);
        assert!(!h.flags(&old).contains(&Flag::Unused));
        Arc::make_mut(&mut h.last_used)
            .insert("apikey_other".into(), now.date_naive() - Duration::days(1));
        assert!(h.flags(&old).contains(&Flag::Unused));
        Arc::make_mut(&mut h.last_used)
            .insert("apikey_1".into(), now.date_naive() - Duration::days(2));
        assert!(!h.flags(&old).contains(&Flag::Unused));
    }

    #[test]
    fn a_key_expiring_within_two_weeks_is_flagged_expiring_soon() {
        let now = Utc::now();
        let h = hygiene(now);
        let mut k = key(ApiKeyStatus::Active, 1, now);
        k.expires_at = Some(now + Duration::days(3));
        assert!(h.flags(&k).contains(&Flag::ExpiringSoon));
        k.expires_at = Some(now + Duration::days(30));
        assert!(!h.flags(&k).contains(&Flag::ExpiringSoon));
        assert!(!h.flags(&k).contains(&Flag::NoExpiry));
    }
}
