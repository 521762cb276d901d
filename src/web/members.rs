//! Members of the Anthropic organization: the searchable list, one member's page, changing
//! their role and removing them.
//!
//! The whole list comes from the cache (`state.org.users()`); search, filter, sort and paging
//! happen here, so moving through 5,000 members makes no upstream call.

use std::collections::HashMap;

use crate::web::extract::Form;
use crate::web::extract::{Path, Query};
use crate::web::routes::{Access::Needs, Routes};
use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::json;

use super::context::wants_partial;
use super::context::Layout;
use super::error::{AppError, AppResult};
use super::page::{failure_status, render};
use super::present::{self, Pager, RoleChoice};
use super::Ctx;
use crate::anthropic::{ApiError, ApiKey, OrgRole, User, WorkspaceRole};
use crate::auth::Permission;
use crate::org::members::MemberIndex;
use crate::org::{Snapshot, Touched};
use crate::service;

/// Up to this many workspaces, a member page reads their memberships before showing.
const INLINE_WORKSPACES: usize = 20;

pub fn routes() -> Routes {
    use Permission::*;
    Routes::new()
        .get("/members", Needs(ViewDirectory), index)
        .get("/members/{user_id}", Needs(ViewDirectory), show)
        .get(
            "/members/{user_id}/workspaces",
            Needs(ViewDirectory),
            workspaces_section,
        )
        .post(
            "/members/{user_id}/role",
            Needs(ManageOrganization),
            change_role,
        )
        .get(
            "/members/{user_id}/remove",
            Needs(ManageOrganization),
            confirm_remove,
        )
        .post(
            "/members/{user_id}/remove",
            Needs(ManageOrganization),
            remove,
        )
}

/// Roles the Admin API will not change or remove (admins, and owners by the same rule).
fn is_protected(role: &OrgRole) -> bool {
    matches!(
        role,
        OrgRole::Admin | OrgRole::Owner | OrgRole::PrimaryOwner
    )
}

// ---------------------------------------------------------------------------------------------
// The list

#[derive(Deserialize, Default, Clone)]
pub struct MembersQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub role: String,
    /// `none`: only the members who reach no workspace (as the overview counts them).
    #[serde(default)]
    pub workspace: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub dir: String,
    #[serde(default)]
    pub page: String,
}

impl MembersQuery {
    fn sort_key(&self) -> &str {
        match self.sort.as_str() {
            "email" | "role" | "added" => &self.sort,
            _ => "name",
        }
    }

    fn descending(&self) -> bool {
        self.dir == "desc"
    }

    fn link(&self, sort: &str, dir: &str, page: usize) -> String {
        let page = if page > 1 {
            page.to_string()
        } else {
            String::new()
        };
        let sort = if sort == "name" { "" } else { sort };
        let dir = if dir == "desc" { "desc" } else { "" };
        present::link(
            "/members",
            &[
                ("q", &self.q),
                ("role", &self.role),
                ("workspace", &self.workspace),
                ("sort", sort),
                ("dir", dir),
                ("page", &page),
            ],
        )
    }
}

pub struct MemberRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub role_value: String,
    pub added_at: DateTime<Utc>,
}

impl MemberRow {
    fn of(user: &User) -> Self {
        MemberRow {
            id: user.id.clone(),
            name: user.name.clone(),
            email: user.email.clone(),
            role: present::org_role(&user.role),
            role_value: user.role.as_str().to_owned(),
            added_at: user.added_at,
        }
    }
}

/// A sortable column header.
pub struct SortLink {
    pub label: &'static str,
    pub href: String,
    /// `ascending`, `descending` or `none`, for `aria-sort`.
    pub state: &'static str,
}

/// Everything the table region shows; the same struct for the full page and the htmx partial.
pub struct MembersTable {
    pub rows: Vec<MemberRow>,
    pub columns: Vec<SortLink>,
    pub pager: Pager,
    pub error: Option<String>,
    pub filtered: bool,
    /// The sort in effect (empty for the default), carried by the search form.
    pub sort: String,
    pub dir: String,
}

fn build_table(
    snapshot: Option<&Snapshot>,
    error: Option<String>,
    query: &MembersQuery,
) -> MembersTable {
    let sort = query.sort_key();
    let descending = query.descending();
    let columns = [
        ("name", "Name"),
        ("email", "Email"),
        ("role", "Role"),
        ("added", "Added"),
    ]
    .into_iter()
    .map(|(key, label)| {
        let active = key == sort;
        let dir = if active && !descending { "desc" } else { "asc" };
        SortLink {
            label,
            href: query.link(key, dir, 1),
            state: match (active, descending) {
                (false, _) => "none",
                (true, false) => "ascending",
                (true, true) => "descending",
            },
        }
    })
    .collect();
    let filtered =
        !query.q.trim().is_empty() || !query.role.is_empty() || query.workspace == "none";
    let requested = query.page.parse().unwrap_or(1);
    let Some(snapshot) = snapshot.filter(|_| error.is_none()) else {
        return MembersTable {
            rows: Vec::new(),
            columns,
            pager: Pager::empty(),
            error,
            filtered,
            sort: String::new(),
            dir: String::new(),
        };
    };
    let index = MemberIndex::of(snapshot);
    let users = &snapshot.users;
    let needle = query.q.trim().to_lowercase();
    let role = query.role.as_str();
    let order = index.order(sort);
    let counts = (query.workspace == "none").then(|| crate::org::counts::Counts::of(snapshot));
    let unplaced: Option<std::collections::HashSet<&str>> = counts
        .as_ref()
        .map(|c| c.without_workspace.iter().map(String::as_str).collect());
    let placed = |at: u32| match &unplaced {
        Some(ids) => ids.contains(users[at as usize].id.as_str()),
        None => true,
    };
    let wanted = |&&at: &&u32| {
        placed(at)
            && (role.is_empty() || users[at as usize].role.as_str() == role)
            && (needle.is_empty() || index.haystack[at as usize].contains(&needle))
    };
    // Unfiltered, the page is a slice of the index: nothing is collected per view.
    let everyone = unplaced.is_none() && role.is_empty() && needle.is_empty();
    let found: std::borrow::Cow<'_, [u32]> = if everyone {
        order.into()
    } else {
        order
            .iter()
            .filter(wanted)
            .copied()
            .collect::<Vec<_>>()
            .into()
    };
    let dir = if descending { "desc" } else { "asc" };
    let pager = Pager::new(found.len(), requested, |page| query.link(sort, dir, page));
    let rows = pager
        .range()
        .map(|i| match descending {
            true => found[found.len() - 1 - i],
            false => found[i],
        })
        .map(|at| MemberRow::of(&users[at as usize]))
        .collect();
    MembersTable {
        rows,
        columns,
        pager,
        error: None,
        filtered,
        sort: if sort == "name" {
            String::new()
        } else {
            sort.to_owned()
        },
        dir: if descending {
            "desc".into()
        } else {
            String::new()
        },
    }
}

#[derive(Template)]
#[template(path = "members/index.html")]
struct IndexPage {
    layout: Layout,
    query: MembersQuery,
    roles: Vec<RoleChoice>,
    table: MembersTable,
    can_manage: bool,
}

#[derive(Template)]
#[template(path = "members/_table.html")]
struct TablePartial {
    table: MembersTable,
}

/// Every role a member can have, for the filter: the Console roles and any other role present.
fn filter_roles(present: &[OrgRole]) -> Vec<RoleChoice> {
    let mut roles: Vec<OrgRole> = vec![
        OrgRole::User,
        OrgRole::ClaudeCodeUser,
        OrgRole::Developer,
        OrgRole::Billing,
        OrgRole::Admin,
    ];
    for role in present {
        if !roles.contains(role) {
            roles.push(role.clone());
        }
    }
    roles
        .iter()
        .map(|r| RoleChoice {
            value: r.as_str().to_owned(),
            label: present::org_role(r),
            description: present::org_role_description(r),
        })
        .collect()
}

pub async fn index(
    ctx: Ctx,
    headers: HeaderMap,
    Query(query): Query<MembersQuery>,
) -> AppResult<Response> {
    ctx.require(Permission::ViewDirectory).await?;
    let (snapshot, error) = match ctx.state.org.synced() {
        Ok(snapshot) => (Some(snapshot), None),
        Err(error) => (None, Some(error.user_message())),
    };
    let status = if error.is_some() {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    let table = build_table(snapshot.as_deref(), error, &query);
    if wants_partial(&headers) {
        return render(status, &TablePartial { table });
    }
    let present = snapshot
        .as_ref()
        .map(|s| MemberIndex::of(s).roles.clone())
        .unwrap_or_default();
    let page = IndexPage {
        layout: ctx.layout("Members", "members").await,
        roles: filter_roles(&present),
        query,
        table,
        can_manage: ctx.can(Permission::ManageOrganization),
    };
    render(status, &page)
}

// ---------------------------------------------------------------------------------------------
// One member

pub struct Membership {
    pub workspace_id: String,
    pub workspace_name: String,
    pub archived: bool,
    pub role: String,
    pub implicit: bool,
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub workspace: String,
    pub created_at: DateTime<Utc>,
    /// Stops working when the member is removed (a personal, member-bound key).
    pub personal: bool,
    pub active: bool,
}

async fn find_user(ctx: &Ctx, user_id: &str) -> AppResult<User> {
    match ctx.state.org.synced()?.person(user_id) {
        Some((user, true)) => Ok(user.clone()),
        _ => Err(AppError::NotFound),
    }
}

/// The workspaces this member belongs to. Admins are workspace admins everywhere without a
/// listing; for everyone else each workspace's (cached) member list is read, a few at a time.
async fn memberships(ctx: &Ctx, user: &User) -> Result<Vec<Membership>, String> {
    let workspaces = ctx
        .state
        .org
        .workspaces()
        .await
        .map_err(|e| e.user_message())?;
    if is_protected(&user.role) {
        return Ok(workspaces
            .iter()
            .map(|w| Membership {
                workspace_id: w.id.clone(),
                workspace_name: w.name.clone(),
                archived: w.is_archived(),
                role: present::workspace_role(&WorkspaceRole::WorkspaceAdmin),
                implicit: true,
            })
            .collect());
    }
    // Owned ids and an owned handle keep the futures `Send` for axum.
    let ids: Vec<String> = workspaces.iter().map(|w| w.id.clone()).collect();
    let listed: Vec<_> = stream::iter(ids)
        .map(|id| {
            let org = ctx.state.org.clone();
            async move { org.workspace_members(&id).await }
        })
        .buffered(8)
        .collect()
        .await;
    let mut out = Vec::new();
    for (workspace, members) in workspaces.iter().zip(listed) {
        let members = members.map_err(|e| e.user_message())?;
        if let Some(member) = members.iter().find(|m| *m.user_id == *user.id) {
            out.push(Membership {
                workspace_id: workspace.id.clone(),
                workspace_name: workspace.name.clone(),
                archived: workspace.is_archived(),
                role: present::workspace_role(&member.workspace_role),
                // Billing members hold workspace_billing everywhere by their org role.
                implicit: member.workspace_role == WorkspaceRole::WorkspaceBilling,
            });
        }
    }
    Ok(out)
}

/// Keys this member created or that act as them.
async fn keys_of(ctx: &Ctx, user_id: &str) -> Result<Vec<KeyRow>, String> {
    let keys = ctx
        .state
        .org
        .api_keys()
        .await
        .map_err(|e| e.user_message())?;
    let names: HashMap<String, String> = match ctx.state.org.workspaces().await {
        Ok(ws) => ws.iter().map(|w| (w.id.clone(), w.name.clone())).collect(),
        Err(_) => HashMap::new(),
    };
    let mine = |k: &&ApiKey| {
        k.created_by.as_ref().is_some_and(|c| &*c.id == user_id)
            || k.principal_user_id() == Some(user_id)
    };
    let mut rows: Vec<KeyRow> = keys
        .iter()
        .filter(mine)
        .map(|k| KeyRow {
            id: k.id.clone(),
            name: k.name.clone(),
            status: k.status.as_str().to_owned(),
            workspace: match k.workspace_id() {
                Some(id) => names.get(id).cloned().unwrap_or_else(|| id.to_owned()),
                None => "None (organization-level personal key)".into(),
            },
            created_at: k.created_at,
            personal: k.workspace_id().is_none()
                || k.principal_user_id() == Some(user_id)
                // Keys in the Console's Claude Code workspace are bound to the member (§5.2);
                // that workspace is known only by its name.
                || k
                    .workspace_id()
                    .is_some_and(|id| names.get(id).is_some_and(|n| n == "Claude Code")),
            active: k.status == crate::anthropic::ApiKeyStatus::Active,
        })
        .collect();
    rows.sort_by_key(|k| std::cmp::Reverse(k.created_at));
    Ok(rows)
}

#[derive(Template)]
#[template(path = "members/show.html")]
struct ShowPage {
    layout: Layout,
    member: MemberRow,
    protected: bool,
    /// `None`: too many workspaces to read before the page shows; loaded afterwards.
    memberships: Option<Result<Vec<Membership>, String>>,
    keys: Result<Vec<KeyRow>, String>,
    roles: Vec<RoleChoice>,
    can_manage: bool,
    can_audit: bool,
    error: Option<String>,
    chosen_role: String,
    /// What each other role would give and take away, before anything is changed.
    role_effects: Vec<RoleEffect>,
}

/// A role change in plain words: what the person would gain and lose.
pub struct RoleEffect {
    pub role: String,
    pub gains: String,
    pub loses: String,
}

fn role_effects(user: &User) -> Vec<RoleEffect> {
    present::org_role_choices()
        .into_iter()
        .filter(|c| c.value != user.role.as_str())
        .filter_map(|c| {
            let to: OrgRole = c.value.parse().ok()?;
            let (gains, loses) = crate::service::members::role_change_effects(&user.role, &to);
            Some(RoleEffect {
                role: c.label,
                gains: gains.join(", "),
                loses: loses.join(", "),
            })
        })
        .collect()
}

async fn render_show(
    ctx: &Ctx,
    user: &User,
    status: StatusCode,
    error: Option<String>,
    chosen_role: String,
) -> AppResult<Response> {
    // Each workspace's member list is one upstream read; with many workspaces the page shows
    // first and the memberships follow (htmx, or a link without JavaScript).
    let inline = is_protected(&user.role)
        || ctx
            .state
            .org
            .workspaces()
            .await
            .map_or(true, |w| w.len() <= INLINE_WORKSPACES);
    let read_memberships = async {
        if inline {
            Some(memberships(ctx, user).await)
        } else {
            None
        }
    };
    let (memberships, keys) = tokio::join!(read_memberships, keys_of(ctx, &user.id));
    let page = ShowPage {
        layout: ctx
            .layout(format!("Member {}", display_name(user)), "members")
            .await,
        member: MemberRow::of(user),
        protected: is_protected(&user.role),
        memberships,
        keys,
        roles: present::org_role_choices(),
        role_effects: role_effects(user),
        can_manage: ctx.can(Permission::ManageOrganization),
        can_audit: ctx.can(Permission::ViewAudit),
        error,
        chosen_role,
    };
    render(status, &page)
}

fn display_name(user: &User) -> &str {
    if user.name.trim().is_empty() {
        &user.email
    } else {
        &user.name
    }
}

#[derive(Template)]
#[template(path = "members/_workspaces.html")]
struct WorkspacesPartial {
    memberships: Result<Vec<Membership>, String>,
    protected: bool,
}

#[derive(Template)]
#[template(path = "members/workspaces.html")]
struct WorkspacesPage {
    layout: Layout,
    member: MemberRow,
    memberships: Result<Vec<Membership>, String>,
    protected: bool,
}

/// The member's workspaces on their own, for pages that load them after showing.
pub async fn workspaces_section(
    ctx: Ctx,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> AppResult<Response> {
    ctx.require(Permission::ViewDirectory).await?;
    let user = find_user(&ctx, &user_id).await?;
    let memberships = memberships(&ctx, &user).await;
    let protected = is_protected(&user.role);
    if wants_partial(&headers) {
        return render(
            StatusCode::OK,
            &WorkspacesPartial {
                memberships,
                protected,
            },
        );
    }
    let page = WorkspacesPage {
        layout: ctx
            .layout(format!("Workspaces of {}", display_name(&user)), "members")
            .await,
        member: MemberRow::of(&user),
        memberships,
        protected,
    };
    render(StatusCode::OK, &page)
}

pub async fn show(ctx: Ctx, Path(user_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ViewDirectory).await?;
    let user = match find_user(&ctx, &user_id).await {
        Err(AppError::NotFound) => return show_former(&ctx, &user_id).await,
        other => other?,
    };
    let chosen = user.role.as_str().to_owned();
    render_show(&ctx, &user, StatusCode::OK, None, chosen).await
}

#[derive(Template)]
#[template(path = "members/former.html")]
struct FormerPage {
    layout: Layout,
    user: User,
    removed_at: String,
    role: String,
    runs: Vec<(i64, String, String)>,
    can_audit: bool,
    can_manage: bool,
    /// Keys they created, some still active after they left.
    keys: Result<Vec<KeyRow>, String>,
}

/// Someone who left the organization keeps a page: who they were, when they left, and where
/// the records of it are.
async fn show_former(ctx: &Ctx, user_id: &str) -> AppResult<Response> {
    let snapshot = ctx.state.org.snapshot();
    let former = snapshot.former.get(user_id).ok_or(AppError::NotFound)?;
    let runs = crate::service::offboarding::runs_of(&ctx.state, user_id)
        .await?
        .into_iter()
        .map(|run| (run.id, run.state, run.created_at))
        .collect();
    let name = display_name(&former.user);
    let page = FormerPage {
        layout: ctx.layout(format!("{name} (removed)"), "members").await,
        user: former.user.clone(),
        removed_at: former.removed_at.clone(),
        role: present::org_role(&former.user.role),
        runs,
        can_audit: ctx.can(Permission::ViewAudit),
        can_manage: ctx.can(Permission::ManageOrganization),
        keys: keys_of(ctx, user_id).await,
    };
    render(StatusCode::OK, &page)
}

/// The page's explanation of an upstream failure: the API's words and request id, with a
/// plainer reason for the refusals we know.
fn explain(error: &ApiError, role: Option<&OrgRole>, protected: bool) -> String {
    let mut message = error.user_message();
    if error.is_refusal() {
        if role == Some(&OrgRole::Admin) {
            message.push_str(
                " The admin role can only be given in the Anthropic Console, not through the Admin API.",
            );
        } else if protected {
            message.push_str(" Admins can only be changed or removed in the Anthropic Console.");
        }
    }
    message
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

pub async fn change_role(
    ctx: Ctx,
    Path(user_id): Path<String>,
    Form(form): Form<RoleForm>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let user = find_user(&ctx, &user_id).await?;
    // Any known role goes to the API, which is the authority on what it accepts (and its
    // refusal, `admin` included, is audited with its request id). Garbage stops here.
    let role = OrgRole::parse(form.role.trim());
    if !OrgRole::KNOWN.contains(&role) {
        return Err(AppError::BadRequest(format!(
            "{:?} is not an organization role.",
            form.role
        )));
    }
    if role == user.role {
        ctx.flash(
            "info",
            format!(
                "{} is already {}; nothing changed.",
                display_name(&user),
                present::org_role(&role)
            ),
        )
        .await;
        return Ok(Redirect::to(&format!("/members/{}", user.id)).into_response());
    }
    let result =
        service::members::change_role(&ctx.state, &ctx.caller(), &user, role.clone()).await?;
    match result {
        Ok(updated) => {
            ctx.flash(
                "success",
                format!(
                    "{} is now {} (was {}).",
                    display_name(&user),
                    present::org_role(&updated.role),
                    present::org_role(&user.role)
                ),
            )
            .await;
            Ok(Redirect::to(&format!("/members/{}", user.id)).into_response())
        }
        Err(error) => {
            let message = explain(&error, Some(&role), is_protected(&user.role));
            render_show(
                &ctx,
                &user,
                failure_status(&error),
                Some(message),
                role.as_str().to_owned(),
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Removal

#[derive(Template)]
#[template(path = "members/remove.html")]
struct RemovePage {
    layout: Layout,
    member: MemberRow,
    protected: bool,
    keys: Result<Vec<KeyRow>, String>,
    personal_keys: usize,
    workspace_keys: usize,
    pending_invites: usize,
    error: Option<String>,
    /// The latest state could not be checked: why.
    unchecked: Option<String>,
    /// Why there is no one to remove any more.
    gone: Option<String>,
}

async fn render_remove(
    ctx: &Ctx,
    user: &User,
    status: StatusCode,
    error: Option<String>,
) -> AppResult<Response> {
    render_remove_checked(ctx, user, status, error, None, None).await
}

async fn render_remove_checked(
    ctx: &Ctx,
    user: &User,
    status: StatusCode,
    error: Option<String>,
    unchecked: Option<String>,
    gone: Option<String>,
) -> AppResult<Response> {
    let keys = keys_of(ctx, &user.id).await;
    let (personal_keys, workspace_keys) = match &keys {
        Ok(keys) => {
            // Only active keys change: inactive, archived and expired ones already don't work.
            let active = keys.iter().filter(|k| k.active);
            let personal = active.clone().filter(|k| k.personal).count();
            (personal, active.count() - personal)
        }
        Err(_) => (0, 0),
    };
    // Leftover invites to the same address are untouched by a removal: say how many.
    let pending_invites = match ctx.state.org.invites().await {
        Ok(invites) => invites
            .iter()
            .filter(|i| {
                i.status == crate::anthropic::InviteStatus::Pending
                    && i.email.eq_ignore_ascii_case(&user.email)
            })
            .count(),
        Err(_) => 0,
    };
    let page = RemovePage {
        layout: ctx
            .layout(format!("Remove {}", display_name(user)), "members")
            .await,
        member: MemberRow::of(user),
        protected: is_protected(&user.role),
        keys,
        personal_keys,
        workspace_keys,
        pending_invites,
        error,
        unchecked,
        gone,
    };
    render(status, &page)
}

/// The removal's confirmation, from the member and their keys as they are now.
pub async fn confirm_remove(ctx: Ctx, Path(user_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let user = find_user(&ctx, &user_id).await?;
    let checked = crate::service::sync::check_current(
        &ctx.state,
        &[
            Touched::User(user.id.clone()),
            Touched::KeysOfUser(user.id.clone()),
        ],
    )
    .await;
    let snapshot = ctx.state.org.synced()?;
    let (user, gone) = match snapshot.person(&user_id) {
        Some((user, true)) => (user.clone(), None),
        Some((user, false)) => {
            let when = snapshot
                .former
                .get(&user_id)
                .and_then(|f| crate::service::schedules::parse_ts(&f.removed_at))
                .map(|at| crate::labels::day_label(&at))
                .unwrap_or_default();
            let gone = format!(
                "{} is no longer a member of the organization: they were removed outside Orgkeeper (noticed {when}, and recorded in the audit log), so there is nothing to remove.",
                user.email
            );
            (user.clone(), Some(gone))
        }
        None => return Err(AppError::NotFound),
    };
    render_remove_checked(&ctx, &user, StatusCode::OK, None, checked.err(), gone).await
}

pub async fn remove(ctx: Ctx, Path(user_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let user = find_user(&ctx, &user_id).await?;
    let context = json!({ "name": user.name, "role": user.role.as_str() });
    let result =
        service::members::remove(&ctx.state, &ctx.caller(), &user.id, &user.email, context).await?;
    match result {
        Ok(_) => {
            ctx.flash(
                "success",
                format!(
                    "{} ({}) was removed from the organization.",
                    display_name(&user),
                    user.email
                ),
            )
            .await;
            Ok(Redirect::to("/members").into_response())
        }
        Err(error) => {
            let message = explain(&error, None, is_protected(&user.role));
            render_remove(&ctx, &user, failure_status(&error), Some(message)).await
        }
    }
}
