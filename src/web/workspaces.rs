//! Workspaces: the list, creating, renaming and recolouring, archiving (after a confirmation
//! page), and each workspace's members, API keys and rate limits. Team leads read only the
//! workspaces assigned to their account; every change needs ManageOrganization and goes
//! through `ctx.org_action`, so it is audited around the Admin API call.

use std::collections::HashSet;

use crate::web::extract::Form;
use crate::web::extract::{Path, Query};
use crate::web::routes::{Access::Needs, Routes};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::context::Layout;
use super::error::{AppError, AppResult};
use super::present::{self, Pager};
use super::Ctx;
use crate::anthropic::{ApiError, ApiKey, OrgRole, Workspace, WorkspaceMember, WorkspaceRole};
use crate::auth::Permission;
use crate::org::members::WorkspaceMemberOrder;
use crate::org::{Snapshot, Touched};
use crate::service;
use crate::web::page::{failure_status, render};

pub fn routes() -> Routes {
    use Permission::*;
    let manage = Needs(ManageOrganization);
    Routes::new()
        .get("/workspaces", Needs(ViewWorkspaces), index)
        .post("/workspaces", manage, create)
        .get("/workspaces/{id}", Needs(ViewWorkspaces), show)
        .post("/workspaces/{id}", manage, update)
        .get("/workspaces/{id}/archive", manage, archive_confirm)
        .post("/workspaces/{id}/archive", manage, archive)
        .post("/workspaces/{id}/members", manage, add_member)
        .get("/workspaces/{id}/candidates", manage, suggest_members)
        .post(
            "/workspaces/{id}/members/{user_id}/role",
            manage,
            change_member_role,
        )
        .get(
            "/workspaces/{id}/members/{user_id}/remove",
            manage,
            remove_member_confirm,
        )
        .post(
            "/workspaces/{id}/members/{user_id}/remove",
            manage,
            remove_member,
        )
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// The colour a new workspace gets unless another is chosen (the API's own default).
const DEFAULT_COLOR: &str = "#6C5BB9";
/// Keys listed on a workspace's page; the rest are one link away on the keys page.
const KEYS_SHOWN: usize = 50;

pub fn valid_color(color: &str) -> bool {
    color.len() == 7 && color.starts_with('#') && color[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// A workspace's own colour for a chart series, when it is a valid one.
pub fn chart_color(workspace: Option<&Workspace>) -> Option<String> {
    workspace
        .map(|w| w.display_color.clone())
        .filter(|c| valid_color(c))
}

/// A colour safe to put in an SVG attribute; anything unexpected from upstream becomes grey.
fn swatch_color(color: &str) -> String {
    if valid_color(color) {
        color.to_owned()
    } else {
        "#CCCCCC".into()
    }
}

/// The workspace, if this person may read it (see `service::workspaces::readable`).
async fn readable_workspace(ctx: &Ctx, id: &str) -> AppResult<(Workspace, bool)> {
    Ok(service::workspaces::readable(&ctx.state, &ctx.caller(), id).await?)
}

/// The workspace roles people may be given, as (value, label).
fn assignable_roles() -> Vec<(String, String)> {
    service::workspaces::assignable_roles()
        .into_iter()
        .map(|r| (r.as_str().to_owned(), present::workspace_role(&r)))
        .collect()
}

const MEMBER_RULES: &str = "Workspace rules: organization admins are workspace admins in every workspace and cannot be changed or removed; organization billing members can only be raised to workspace admin; the workspace billing role cannot be given, it comes with the organization billing role; archived workspaces cannot be changed.";

fn explain_member_refusal(error: &ApiError) -> String {
    if error.is_refusal() {
        format!("{} {MEMBER_RULES}", error.user_message())
    } else {
        error.user_message()
    }
}

/// A refusal means nothing happened; any other failure leaves the outcome unknown, which the
/// client's message already says (refresh and check before trying again).
fn outcome_unknown_or(refused: &str, error: &ApiError) -> String {
    if error.is_refusal() {
        format!("{refused} {}", error.user_message())
    } else {
        error.user_message()
    }
}

// ---------------------------------------------------------------------------------------------
// The list and creating a workspace

pub struct WorkspaceRow {
    pub id: String,
    pub name: String,
    pub color: String,
    pub created_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub is_default: bool,
}

impl WorkspaceRow {
    fn of(workspace: &Workspace, is_default: bool) -> Self {
        WorkspaceRow {
            id: workspace.id.clone(),
            name: workspace.name.clone(),
            color: swatch_color(&workspace.display_color),
            created_at: workspace.created_at,
            archived_at: workspace.archived_at,
            is_default,
        }
    }
}

/// What was typed into a workspace form, kept when the form comes back with an error.
pub struct WorkspaceForm {
    pub name: String,
    pub color: String,
}

impl Default for WorkspaceForm {
    fn default() -> Self {
        Self {
            name: String::new(),
            color: DEFAULT_COLOR.into(),
        }
    }
}

#[derive(Deserialize)]
pub struct RawWorkspaceForm {
    #[serde(default)]
    name: Option<String>,
    /// The colour picker.
    #[serde(default)]
    display_color: String,
    /// The text field, for browsers without a picker; it wins when filled in.
    #[serde(default)]
    display_color_text: String,
}

impl RawWorkspaceForm {
    fn color(&self) -> String {
        let text = self.display_color_text.trim();
        if text.is_empty() {
            self.display_color.trim().to_owned()
        } else if text.starts_with('#') {
            text.to_owned()
        } else {
            format!("#{text}")
        }
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let count = name.chars().count();
    if name.trim().is_empty() {
        Err("Give the workspace a name.".into())
    } else if count > 255 {
        Err(format!(
            "The name is {count} characters long; the Admin API accepts at most 255."
        ))
    } else {
        Ok(())
    }
}

fn check_color(color: &str) -> Result<(), String> {
    if valid_color(color) {
        Ok(())
    } else {
        Err(format!(
            "The colour \"{color}\" is not of the form #RRGGBB (for example #6C5BB9)."
        ))
    }
}

#[derive(Deserialize, Default)]
pub struct IndexQuery {
    #[serde(default)]
    include_archived: Option<String>,
    /// Part of a name or id.
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: String,
}

impl IndexQuery {
    fn include_archived(&self) -> bool {
        matches!(
            self.include_archived.as_deref(),
            Some("1" | "true" | "on" | "yes")
        )
    }

    /// The list's address with these filters, on `page`.
    fn link(&self, page: usize) -> String {
        let page = if page > 1 {
            page.to_string()
        } else {
            String::new()
        };
        let archived = if self.include_archived() { "1" } else { "" };
        present::link(
            "/workspaces",
            &[
                ("include_archived", archived),
                ("q", &self.q),
                ("page", &page),
            ],
        )
    }
}

#[derive(Template)]
#[template(path = "workspaces/index.html")]
struct IndexPage {
    layout: Layout,
    rows: Vec<WorkspaceRow>,
    include_archived: bool,
    archived_hidden: usize,
    search: String,
    pager: Pager,
    load_error: Option<String>,
    can_manage: bool,
    form: WorkspaceForm,
    form_error: Option<String>,
}

async fn render_index(
    ctx: &Ctx,
    query: &IndexQuery,
    form: WorkspaceForm,
    form_error: Option<String>,
    status: StatusCode,
) -> AppResult<Response> {
    let workspaces = match ctx.state.org.workspaces().await {
        Ok(all) => ctx
            .state
            .org
            .default_workspace_id()
            .await
            .map(|id| (all, id)),
        Err(error) => Err(error),
    };
    let include_archived = query.include_archived();
    let search = query.q.trim().to_lowercase();
    let requested = query.page.parse().unwrap_or(1);
    let (rows, archived_hidden, pager, load_error) = match workspaces {
        Ok((all, default_id)) => {
            let default_id = default_id.as_deref();
            let readable: Vec<&Workspace> = all
                .iter()
                .filter(|w| ctx.may_read_workspace(&w.id))
                .collect();
            let hidden = readable.iter().filter(|w| w.is_archived()).count();
            // A page at a time, so the list costs the rows it shows, whatever the size.
            let found: Vec<&Workspace> = readable
                .into_iter()
                .filter(|w| include_archived || !w.is_archived())
                .filter(|w| {
                    search.is_empty()
                        || w.name.to_lowercase().contains(&search)
                        || w.id.to_lowercase().contains(&search)
                })
                .collect();
            let pager = Pager::new(found.len(), requested, |page| query.link(page));
            let rows = found[pager.range()]
                .iter()
                .map(|w| WorkspaceRow::of(w, default_id == Some(w.id.as_str())))
                .collect();
            (rows, if include_archived { 0 } else { hidden }, pager, None)
        }
        Err(error) => (Vec::new(), 0, Pager::empty(), Some(error.user_message())),
    };
    let page = IndexPage {
        layout: ctx.layout("Workspaces", "workspaces").await,
        rows,
        include_archived,
        archived_hidden,
        search: query.q.trim().to_owned(),
        pager,
        load_error,
        can_manage: ctx.can(Permission::ManageOrganization),
        form,
        form_error,
    };
    render(status, &page)
}

pub async fn index(ctx: Ctx, Query(query): Query<IndexQuery>) -> AppResult<Response> {
    ctx.require(Permission::ViewWorkspaces).await?;
    render_index(&ctx, &query, WorkspaceForm::default(), None, StatusCode::OK).await
}

pub async fn create(ctx: Ctx, Form(raw): Form<RawWorkspaceForm>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let form = WorkspaceForm {
        name: raw.name.clone().unwrap_or_default(),
        color: raw.color(),
    };
    // No colour at all (a client without the picker) leaves the API's default.
    let color = (!form.color.is_empty()).then(|| form.color.clone());
    let check = check_name(&form.name).and_then(|()| color.as_deref().map_or(Ok(()), check_color));
    if let Err(message) = check {
        return render_index(
            &ctx,
            &IndexQuery::default(),
            form,
            Some(message),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let result =
        service::workspaces::create(&ctx.state, &ctx.caller(), &form.name, color.as_deref())
            .await?;
    match result {
        Ok(workspace) => {
            ctx.flash(
                "success",
                format!(
                    "Workspace {} created. Add its members below.",
                    workspace.name
                ),
            )
            .await;
            Ok(Redirect::to(&format!("/workspaces/{}", workspace.id)).into_response())
        }
        Err(error) => {
            let status = failure_status(&error);
            let message = if !error.is_refusal() {
                // Not retried: it may have been created; the message says to check first.
                format!(
                    "Orgkeeper could not confirm that the workspace was created. {}",
                    error.user_message()
                )
            } else if error.message().contains("maximum") {
                format!(
                    "The workspace was not created. {} Archived workspaces do not count towards the limit.",
                    error.user_message()
                )
            } else {
                format!("The workspace was not created. {}", error.user_message())
            };
            render_index(&ctx, &IndexQuery::default(), form, Some(message), status).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One workspace

pub struct MemberRow {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub role_label: String,
    /// Org admins: no change possible. Org billing: only a raise to workspace admin.
    pub org_admin: bool,
    pub org_billing: bool,
}

/// A member one may add, as a suggestion for the add form.
pub struct Candidate {
    /// What the form sends: the email (the add form also takes an id or a unique name).
    pub value: String,
    pub label: String,
}

/// The members card's search and page, from the query string.
#[derive(Deserialize, Default, Clone)]
pub struct MemberQuery {
    #[serde(default)]
    pub member: String,
    #[serde(default)]
    pub members_page: String,
}

/// The members card, rendered inside the page or alone for htmx.
pub struct MembersView {
    pub workspace_id: String,
    pub csrf: String,
    /// One page of members, by name.
    pub rows: Vec<MemberRow>,
    pub pager: Pager,
    /// The search over this workspace's members, as typed.
    pub search: String,
    pub roles: Vec<(String, String)>,
    pub can_manage: bool,
    /// Every organization member is already here (nothing to add).
    pub everyone_here: bool,
    pub archived: bool,
    pub load_error: Option<String>,
    pub success: Option<String>,
    pub error: Option<String>,
    /// What the add form had, kept after a refusal.
    pub add_user: String,
    pub add_role: String,
}

async fn members_view(ctx: &Ctx, workspace: &Workspace, query: &MemberQuery) -> MembersView {
    let mut view = MembersView {
        workspace_id: workspace.id.clone(),
        csrf: ctx.csrf.clone(),
        rows: Vec::new(),
        pager: Pager::empty(),
        search: query.member.clone(),
        roles: assignable_roles(),
        can_manage: ctx.can(Permission::ManageOrganization) && !workspace.is_archived(),
        everyone_here: false,
        archived: workspace.is_archived(),
        load_error: None,
        success: None,
        error: None,
        add_user: String::new(),
        add_role: WorkspaceRole::WorkspaceUser.as_str().to_owned(),
    };
    let snapshot = match ctx.state.org.synced() {
        Ok(snapshot) => snapshot,
        Err(error) => {
            view.load_error = Some(error.user_message());
            return view;
        }
    };
    let members = snapshot.members_in(&workspace.id);
    let order = WorkspaceMemberOrder::of(&snapshot);
    let (sorted, text) = order
        .0
        .get(&workspace.id)
        .map(|(o, t)| (o.as_slice(), t.as_slice()))
        .unwrap_or_default();
    let needle = query.member.trim().to_lowercase();
    let found: Vec<u32> = sorted
        .iter()
        .copied()
        .filter(|&at| needle.is_empty() || text[at as usize].contains(&needle))
        .collect();
    let requested = query.members_page.parse().unwrap_or(1);
    let base = format!("/workspaces/{}", workspace.id);
    view.pager = Pager::new(found.len(), requested, |page| {
        let page = page.to_string();
        let qs = present::query_string(&[
            ("member", query.member.as_str()),
            ("members_page", page.as_str()),
        ]);
        format!("{base}?{qs}#members")
    });
    view.rows = found[view.pager.range()]
        .iter()
        .map(|&at| member_row(&members[at as usize], &snapshot))
        .collect();
    let here: HashSet<&str> = members.iter().map(|m| &*m.user_id).collect();
    view.everyone_here = snapshot.users.iter().all(|u| here.contains(u.id.as_str()));
    view
}

fn member_row(m: &WorkspaceMember, snapshot: &Snapshot) -> MemberRow {
    let user = snapshot.person(&m.user_id).map(|(u, _)| u);
    MemberRow {
        user_id: m.user_id.to_string(),
        name: user.map(|u| u.name.clone()).unwrap_or_default(),
        email: user.map(|u| u.email.clone()).unwrap_or_default(),
        role: m.workspace_role.as_str().to_owned(),
        role_label: present::workspace_role(&m.workspace_role),
        org_admin: user.is_some_and(|u| u.role == OrgRole::Admin),
        org_billing: user.is_some_and(|u| u.role == OrgRole::Billing),
    }
}

/// Up to this many suggestions while typing a name in the add form.
const SUGGESTIONS: usize = 10;

/// Organization members not yet in the workspace whose name or email contains `text`.
fn candidates(snapshot: &Snapshot, workspace_id: &str, text: &str) -> Vec<Candidate> {
    let text = text.trim().to_lowercase();
    let here: HashSet<&str> = snapshot
        .members_in(workspace_id)
        .iter()
        .map(|m| &*m.user_id)
        .collect();
    snapshot
        .users
        .iter()
        .filter(|u| !here.contains(u.id.as_str()))
        .filter(|u| {
            text.is_empty()
                || u.name.to_lowercase().contains(&text)
                || u.email.to_lowercase().contains(&text)
        })
        .take(SUGGESTIONS)
        .map(|u| Candidate {
            value: u.email.clone(),
            label: if u.name.is_empty() {
                u.email.clone()
            } else {
                format!("{} <{}>", u.name, u.email)
            },
        })
        .collect()
}

/// The member the add form names: an id, an email, "Name <email>", or a name (or part of one)
/// that only one member not yet in the workspace has. Answers (id, email) or why not.
fn resolve_candidate(
    snapshot: &Snapshot,
    workspace_id: &str,
    typed: &str,
) -> Result<(String, String), String> {
    let typed = typed.trim();
    // "Ada Lovelace <ada@example.com>", as the suggestions show people, means the email.
    let typed = match (typed.rfind('<'), typed.strip_suffix('>')) {
        (Some(at), Some(inner)) => inner[at + 1..].trim(),
        _ => typed,
    };
    if typed.is_empty() {
        return Err("Type the name or email of the organization member to add.".into());
    }
    if let Some((user, true)) = snapshot.person(typed) {
        return Ok((user.id.clone(), user.email.clone()));
    }
    let lower = typed.to_lowercase();
    if let Some(user) = snapshot
        .users
        .iter()
        .find(|u| u.email.to_lowercase() == lower)
    {
        return Ok((user.id.clone(), user.email.clone()));
    }
    let matches = candidates(snapshot, workspace_id, typed);
    match matches.as_slice() {
        [] => Err(format!(
            "No organization member outside this workspace matches “{typed}”. Check the spelling, or invite them to the organization first."
        )),
        [one] => resolve_candidate(snapshot, workspace_id, &one.value),
        many => Err(format!(
            "{}{} members match “{typed}”: type more of the name, or the whole email.",
            if many.len() >= SUGGESTIONS { "At least " } else { "" },
            many.len()
        )),
    }
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub hint: String,
    pub expires_at: Option<DateTime<Utc>>,
}

pub struct LimitRow {
    pub group: String,
    pub limits: Vec<String>,
}

#[derive(Template)]
#[template(path = "workspaces/show.html")]
struct ShowPage {
    layout: Layout,
    workspace: WorkspaceRow,
    can_manage: bool,
    edit: WorkspaceForm,
    edit_error: Option<String>,
    members: MembersView,
    keys: Vec<KeyRow>,
    keys_total: usize,
    keys_error: Option<String>,
    limits: Vec<LimitRow>,
    limits_error: Option<String>,
}

#[derive(Template)]
#[template(path = "workspaces/_members.html")]
struct MembersPartial {
    members: MembersView,
}

fn key_rows(all: &[ApiKey], workspace_id: &str) -> (Vec<KeyRow>, usize) {
    let matching: Vec<&ApiKey> = all
        .iter()
        .filter(|k| k.workspace_id() == Some(workspace_id))
        .collect();
    let total = matching.len();
    let rows = matching
        .into_iter()
        .take(KEYS_SHOWN)
        .map(|k| KeyRow {
            id: k.id.clone(),
            name: k.name.clone(),
            status: k.status.as_str().to_owned(),
            hint: k.partial_key_hint.clone().unwrap_or_default(),
            expires_at: k.expires_at,
        })
        .collect();
    (rows, total)
}

/// Rate limits as the last sync read them (they change rarely, and only in the Console).
async fn limit_rows(ctx: &Ctx, workspace_id: &str) -> Result<Vec<LimitRow>, String> {
    let snapshot = ctx.state.org.snapshot();
    let entries = match snapshot.rate_limits.get(workspace_id) {
        Some(Ok(entries)) => entries,
        Some(Err(reason)) => return Err(reason.clone()),
        None => return Err("Rate limits are read with the next sync of the organization.".into()),
    };
    Ok(entries
        .iter()
        .map(|entry| LimitRow {
            group: entry.group.label(),
            limits: entry
                .limits
                .iter()
                .map(|l| {
                    let source = match l.source.as_ref().map(|s| s.kind.as_str()) {
                        Some("workspace") => " (set for this workspace)",
                        Some("organization") => " (organization limit)",
                        _ => "",
                    };
                    format!(
                        "{}: {}{source}",
                        crate::labels::limiter(&l.kind),
                        crate::web::present::count(l.value)
                    )
                })
                .collect(),
        })
        .collect())
}

struct ShowExtras {
    members: MemberQuery,
    edit: Option<WorkspaceForm>,
    edit_error: Option<String>,
    member_error: Option<String>,
    add_user: Option<(String, String)>,
}

async fn render_show(
    ctx: &Ctx,
    workspace: Workspace,
    is_default: bool,
    extras: ShowExtras,
    status: StatusCode,
) -> AppResult<Response> {
    let (mut members, keys, limits) = tokio::join!(
        members_view(ctx, &workspace, &extras.members),
        ctx.state.org.api_keys(),
        limit_rows(ctx, &workspace.id)
    );
    members.error = extras.member_error;
    if let Some((user, role)) = extras.add_user {
        members.add_user = user;
        members.add_role = role;
    }
    let (keys, keys_total, keys_error) = match keys {
        Ok(all) => {
            let (rows, total) = key_rows(&all, &workspace.id);
            (rows, total, None)
        }
        Err(error) => (Vec::new(), 0, Some(error.user_message())),
    };
    let (limits, limits_error) = match limits {
        Ok(rows) => (rows, None),
        Err(message) => (Vec::new(), Some(message)),
    };
    let page = ShowPage {
        layout: ctx
            .layout(format!("Workspace {}", workspace.name), "workspaces")
            .await,
        can_manage: ctx.can(Permission::ManageOrganization) && !workspace.is_archived(),
        edit: extras.edit.unwrap_or_else(|| WorkspaceForm {
            name: workspace.name.clone(),
            color: swatch_color(&workspace.display_color),
        }),
        edit_error: extras.edit_error,
        members,
        keys,
        keys_total,
        keys_error,
        limits,
        limits_error,
        workspace: WorkspaceRow::of(&workspace, is_default),
    };
    render(status, &page)
}

fn no_extras() -> ShowExtras {
    ShowExtras {
        members: MemberQuery::default(),
        edit: None,
        edit_error: None,
        member_error: None,
        add_user: None,
    }
}

pub async fn show(
    ctx: Ctx,
    Path(id): Path<String>,
    Query(members): Query<MemberQuery>,
) -> AppResult<Response> {
    ctx.require(Permission::ViewWorkspaces).await?;
    let (workspace, is_default) = readable_workspace(&ctx, &id).await?;
    let extras = ShowExtras {
        members,
        ..no_extras()
    };
    render_show(&ctx, workspace, is_default, extras, StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "workspaces/_candidates.html")]
struct CandidatesPartial {
    candidates: Vec<Candidate>,
}

#[derive(Deserialize)]
pub struct SuggestQuery {
    #[serde(default)]
    user_id: String,
}

/// Suggestions for the add form while a name is typed (the `<datalist>` behind the field).
pub async fn suggest_members(
    ctx: Ctx,
    Path(id): Path<String>,
    Query(query): Query<SuggestQuery>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let (workspace, _) = readable_workspace(&ctx, &id).await?;
    let snapshot = ctx.state.org.synced()?;
    let candidates = candidates(&snapshot, &workspace.id, &query.user_id);
    render(StatusCode::OK, &CandidatesPartial { candidates })
}

/// Rename and recolour: only what changed is sent, and audited as before → after.
pub async fn update(
    ctx: Ctx,
    Path(id): Path<String>,
    Form(raw): Form<RawWorkspaceForm>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let (workspace, is_default) = readable_workspace(&ctx, &id).await?;
    let form = WorkspaceForm {
        name: raw.name.clone().unwrap_or_else(|| workspace.name.clone()),
        color: raw.color(),
    };
    let new_name = (form.name != workspace.name).then(|| form.name.clone());
    let new_color = (!form.color.is_empty()
        && !form.color.eq_ignore_ascii_case(&workspace.display_color))
    .then(|| form.color.clone());
    let check = new_name
        .as_deref()
        .map_or(Ok(()), check_name)
        .and_then(|()| new_color.as_deref().map_or(Ok(()), check_color));
    if let Err(message) = check {
        let extras = ShowExtras {
            edit: Some(form),
            edit_error: Some(message),
            ..no_extras()
        };
        return render_show(
            &ctx,
            workspace,
            is_default,
            extras,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    if new_name.is_none() && new_color.is_none() {
        ctx.flash("info", "Nothing was changed.").await;
        return Ok(Redirect::to(&format!("/workspaces/{id}")).into_response());
    }
    let result = service::workspaces::update(
        &ctx.state,
        &ctx.caller(),
        &workspace,
        new_name.as_deref(),
        new_color.as_deref(),
    )
    .await?;
    match result {
        Ok(updated) => {
            ctx.flash("success", format!("Workspace {} saved.", updated.name))
                .await;
            Ok(Redirect::to(&format!("/workspaces/{id}")).into_response())
        }
        Err(error) => {
            let status = failure_status(&error);
            let extras = ShowExtras {
                edit: Some(form),
                edit_error: Some(outcome_unknown_or("Nothing was changed.", &error)),
                ..no_extras()
            };
            render_show(&ctx, workspace, is_default, extras, status).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Archiving

#[derive(Template)]
#[template(path = "workspaces/archive.html")]
struct ArchivePage {
    layout: Layout,
    workspace: WorkspaceRow,
    active_keys: Option<usize>,
    members: Option<usize>,
    error: Option<String>,
    /// The latest state could not be checked: why.
    unchecked: Option<String>,
    /// Archived outside Orgkeeper, as the confirmation's re-read just found.
    gone: Option<String>,
}

async fn render_archive(
    ctx: &Ctx,
    workspace: Workspace,
    is_default: bool,
    error: Option<String>,
    status: StatusCode,
) -> AppResult<Response> {
    render_archive_checked(ctx, workspace, is_default, error, status, None, None).await
}

async fn render_archive_checked(
    ctx: &Ctx,
    workspace: Workspace,
    is_default: bool,
    error: Option<String>,
    status: StatusCode,
    unchecked: Option<String>,
    gone: Option<String>,
) -> AppResult<Response> {
    let (keys, members) = tokio::join!(
        ctx.state.org.api_keys(),
        ctx.state.org.workspace_members(&workspace.id)
    );
    let page = ArchivePage {
        layout: ctx
            .layout(format!("Archive {}", workspace.name), "workspaces")
            .await,
        active_keys: keys.ok().map(|all| {
            all.iter()
                .filter(|k| {
                    k.workspace_id() == Some(workspace.id.as_str())
                        && k.status.as_str() != "archived"
                })
                .count()
        }),
        members: members.ok().map(|m| m.len()),
        error,
        unchecked,
        gone,
        workspace: WorkspaceRow::of(&workspace, is_default),
    };
    render(status, &page)
}

/// The archive's confirmation, from the workspace, its keys and members as they are now.
pub async fn archive_confirm(ctx: Ctx, Path(id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    readable_workspace(&ctx, &id).await?;
    let checked = crate::service::sync::check_current(
        &ctx.state,
        &[
            Touched::Workspace(id.clone()),
            Touched::KeysOfWorkspace(id.clone()),
            Touched::MembersOfWorkspace(id.clone()),
        ],
    )
    .await;
    let (workspace, is_default) = readable_workspace(&ctx, &id).await?;
    let outside = checked
        .as_ref()
        .is_ok_and(|c| c.workspaces.iter().any(|d| d.observed));
    let gone = (outside && workspace.is_archived()).then(|| {
        format!(
            "{} was already archived outside Orgkeeper (noticed {}, and recorded in the audit log), so there is nothing to archive.",
            workspace.name,
            crate::labels::moment_label(&ctx.state.clock.now())
        )
    });
    let unchecked = checked.err();
    render_archive_checked(
        &ctx,
        workspace,
        is_default,
        None,
        StatusCode::OK,
        unchecked,
        gone,
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct ArchiveForm {
    /// The workspace's name, typed to confirm: archiving stops every key in it, for good.
    #[serde(default)]
    confirm: String,
}

pub async fn archive(
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<ArchiveForm>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let (workspace, is_default) = readable_workspace(&ctx, &id).await?;
    // The stakes match a key's archive: type the name. (The default workspace is never
    // offered; a forced request goes to the API, whose refusal is the answer.)
    if !is_default && form.confirm.trim() != workspace.name {
        let message = format!(
            "Type the workspace's name, {}, exactly, to archive it. Nothing was changed.",
            workspace.name
        );
        return render_archive(
            &ctx,
            workspace,
            is_default,
            Some(message),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    // The default workspace is never offered, but a forced request still goes to the API,
    // whose refusal is the authoritative answer (and is audited as failed).
    let result = service::workspaces::archive(&ctx.state, &ctx.caller(), &workspace).await?;
    match result {
        Ok(archived) => {
            ctx.flash(
                "success",
                format!(
                    "Workspace {} is archived. Its API keys were archived with it.",
                    archived.name
                ),
            )
            .await;
            Ok(Redirect::to(&format!("/workspaces/{id}")).into_response())
        }
        Err(error) => {
            let status = failure_status(&error);
            let message = outcome_unknown_or("The workspace was not archived.", &error);
            render_archive(&ctx, workspace, is_default, Some(message), status).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Workspace members

#[derive(Deserialize)]
pub struct AddMemberForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    workspace_role: String,
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    workspace_role: String,
}

fn parse_role(raw: &str) -> AppResult<WorkspaceRole> {
    // workspace_billing is passed on so the API's own refusal explains it.
    WorkspaceRole::KNOWN
        .iter()
        .find(|r| r.as_str() == raw)
        .cloned()
        .ok_or_else(|| AppError::BadRequest(format!("\"{raw}\" is not a workspace role.")))
}

async fn user_label(ctx: &Ctx, user_id: &str) -> String {
    ctx.state
        .org
        .snapshot()
        .person(user_id)
        .map_or_else(|| user_id.to_owned(), |(u, _)| u.email.clone())
}

/// The common ending of a member change: for htmx the refreshed members card with a notice;
/// otherwise a redirect with a flash, or the whole page again with the refusal explained.
async fn finish_member_change<T>(
    ctx: &Ctx,
    workspace: Workspace,
    is_default: bool,
    result: Result<T, ApiError>,
    success: String,
    kept_add: Option<(String, String)>,
) -> AppResult<Response> {
    let id = workspace.id.clone();
    match &result {
        Ok(_) if ctx.client.htmx => {
            let mut members = members_view(ctx, &workspace, &MemberQuery::default()).await;
            members.success = Some(success);
            render(StatusCode::OK, &MembersPartial { members })
        }
        Ok(_) => {
            ctx.flash("success", success).await;
            Ok(Redirect::to(&format!("/workspaces/{id}")).into_response())
        }
        Err(error) => {
            let (message, status) = (explain_member_refusal(error), failure_status(error));
            show_member_error(ctx, workspace, is_default, message, kept_add, status).await
        }
    }
}

/// The members card (alone for htmx, else the whole page) with why a member change did not
/// happen, and what the add form had.
async fn show_member_error(
    ctx: &Ctx,
    workspace: Workspace,
    is_default: bool,
    message: String,
    kept_add: Option<(String, String)>,
    status: StatusCode,
) -> AppResult<Response> {
    if ctx.client.htmx {
        let mut members = members_view(ctx, &workspace, &MemberQuery::default()).await;
        members.error = Some(message);
        if let Some((user, role)) = kept_add {
            members.add_user = user;
            members.add_role = role;
        }
        return render(status, &MembersPartial { members });
    }
    let extras = ShowExtras {
        member_error: Some(message),
        add_user: kept_add,
        ..no_extras()
    };
    render_show(ctx, workspace, is_default, extras, status).await
}

pub async fn add_member(
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<AddMemberForm>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let (workspace, is_default) = readable_workspace(&ctx, &id).await?;
    let role = parse_role(&form.workspace_role)?;
    let kept = Some((form.user_id.clone(), form.workspace_role.clone()));
    let snapshot = ctx.state.org.synced()?;
    let (user_id, label) = match resolve_candidate(&snapshot, &workspace.id, &form.user_id) {
        Ok(found) => found,
        Err(message) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return show_member_error(&ctx, workspace, is_default, message, kept, status).await;
        }
    };
    let person = (user_id.as_str(), label.as_str());
    let result =
        service::workspaces::add_member(&ctx.state, &ctx.caller(), &workspace, person, &role)
            .await?;
    let success = format!(
        "{label} was added to {} as {}.",
        workspace.name,
        present::workspace_role(&role)
    );
    finish_member_change(&ctx, workspace, is_default, result, success, kept).await
}

async fn current_role(ctx: &Ctx, workspace_id: &str, user_id: &str) -> Option<String> {
    ctx.state
        .org
        .workspace_members(workspace_id)
        .await
        .ok()?
        .iter()
        .find(|m| &*m.user_id == user_id)
        .map(|m| m.workspace_role.as_str().to_owned())
}

pub async fn change_member_role(
    ctx: Ctx,
    Path((id, user_id)): Path<(String, String)>,
    Form(form): Form<RoleForm>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let (workspace, is_default) = readable_workspace(&ctx, &id).await?;
    let role = parse_role(&form.workspace_role)?;
    let label = user_label(&ctx, &user_id).await;
    let before = current_role(&ctx, &id, &user_id).await;
    let result = service::workspaces::change_member_role(
        &ctx.state,
        &ctx.caller(),
        &workspace,
        (&user_id, &label),
        before.as_deref(),
        &role,
    )
    .await?;
    let success = format!(
        "{label} is now {} in {}.",
        present::workspace_role(&role),
        workspace.name
    );
    finish_member_change(&ctx, workspace, is_default, result, success, None).await
}

#[derive(Template)]
#[template(path = "workspaces/remove_member.html")]
struct RemoveMemberPage {
    layout: Layout,
    workspace_id: String,
    workspace_name: String,
    user_id: String,
    user_label: String,
    role_label: Option<String>,
    /// The latest state could not be checked: why.
    unchecked: Option<String>,
    /// No longer in the workspace, as the confirmation's re-read found.
    gone: bool,
}

pub async fn remove_member_confirm(
    ctx: Ctx,
    Path((id, user_id)): Path<(String, String)>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let (workspace, _) = readable_workspace(&ctx, &id).await?;
    // The membership as it is now (what changed outside Orgkeeper is recorded as observed).
    let known = current_role(&ctx, &id, &user_id).await.is_some();
    let checked = crate::service::sync::check_current(
        &ctx.state,
        &[Touched::Membership {
            workspace: id.clone(),
            user: user_id.clone(),
        }],
    )
    .await;
    let role = current_role(&ctx, &id, &user_id).await;
    let role_label = role
        .as_ref()
        .map(|r| present::workspace_role(&WorkspaceRole::parse(r)));
    let page = RemoveMemberPage {
        layout: ctx.layout("Remove from workspace", "workspaces").await,
        user_label: user_label(&ctx, &user_id).await,
        workspace_id: workspace.id,
        workspace_name: workspace.name,
        user_id,
        role_label,
        gone: known && role.is_none(),
        unchecked: checked.err(),
    };
    render(StatusCode::OK, &page)
}

pub async fn remove_member(
    ctx: Ctx,
    Path((id, user_id)): Path<(String, String)>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let (workspace, is_default) = readable_workspace(&ctx, &id).await?;
    let label = user_label(&ctx, &user_id).await;
    let before = current_role(&ctx, &id, &user_id).await;
    let result = service::workspaces::remove_member(
        &ctx.state,
        &ctx.caller(),
        &workspace,
        (&user_id, &label),
        before.as_deref(),
        json!({}),
    )
    .await?;
    let success = format!("{label} was removed from {}.", workspace.name);
    finish_member_change(&ctx, workspace, is_default, result, success, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_must_be_hash_and_six_hex_digits() {
        assert!(valid_color("#6c5BB9"));
        assert!(!valid_color("6C5BB9"));
        assert!(!valid_color("#6C5BB"));
        assert!(!valid_color("\"><script>"));
        assert_eq!(swatch_color("red"), "#CCCCCC");
    }

    #[test]
    fn the_typed_colour_wins_over_the_picker() {
        let raw = RawWorkspaceForm {
            name: None,
            display_color: "#000000".into(),
            display_color_text: " ff0000 ".into(),
        };
        assert_eq!(raw.color(), "#ff0000");
    }
}
