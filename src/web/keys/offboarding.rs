//! Offboarding a member: a wizard that lists what the member holds (keys they created,
//! workspace memberships, pending invites to their email), lets the admin tick what to do,
//! previews every step in order, then runs the steps in order.
//!
//! The run and each step's state are stored in SQLite: when a step fails, the run stops there
//! (later steps wait, so nothing happens out of order, e.g. removing the member before their
//! keys are stopped) and "Resume" retries only the unfinished steps.

use crate::web::extract::FormBody;
use std::sync::Arc;

use crate::org::Touched;
use crate::web::extract::Path;
use crate::web::routes::{Access::Needs, Routes};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, Utc};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;

use super::{is_live, render, visible, Names};
use crate::anthropic::{ApiError, ApiKey, ApiKeyStatus, Invite, InviteStatus, KeyKind, User};
use crate::audit::{Action, Outcome};
use crate::auth::Permission;
use crate::db::ts;
use crate::service;
use crate::service::keys::KeyRef;
use crate::service::members::member_target;
use crate::web::context::Layout;
use crate::web::error::{AppError, AppResult};
use crate::web::Ctx;

pub fn routes() -> Routes {
    let manage = Needs(Permission::ManageOrganization);
    Routes::new()
        .get("/members/{user_id}/offboard", manage, plan)
        .post("/members/{user_id}/offboard", manage, preview)
        .post("/members/{user_id}/offboard/start", manage, start)
        .get(
            "/members/{user_id}/offboard/runs/{run_id}",
            manage,
            show_run,
        )
        .post(
            "/members/{user_id}/offboard/runs/{run_id}/resume",
            manage,
            resume,
        )
}

/// What the member holds, read fresh from the (cached) organization.
struct Holdings {
    user: Option<User>,
    keys: Vec<ApiKey>,
    /// (workspace id, workspace name, workspace role)
    memberships: Vec<(String, String, String)>,
    invites: Vec<Invite>,
}

impl Holdings {
    fn label(&self, user_id: &str) -> String {
        match &self.user {
            Some(u) if !u.name.is_empty() => format!("{} <{}>", u.name, u.email),
            Some(u) => u.email.clone(),
            None => user_id.to_owned(),
        }
    }
}

/// Keys the member created or that act as them.
fn belongs_to(key: &ApiKey, user_id: &str) -> bool {
    key.created_by.as_ref().is_some_and(|c| c.id == user_id)
        || key.principal_user_id() == Some(user_id)
}

async fn holdings(ctx: &Ctx, user_id: &str) -> AppResult<Holdings> {
    let users = ctx.state.org.users().await?;
    let user = users.iter().find(|u| u.id == user_id).cloned();
    let keys = ctx.state.org.api_keys().await?;
    let mut keys: Vec<ApiKey> = keys
        .iter()
        .filter(|k| belongs_to(k, user_id) && visible(ctx, k))
        .cloned()
        .collect();
    keys.sort_by_key(|k| (!is_live(k), std::cmp::Reverse(k.created_at)));
    let mut memberships = Vec::new();
    let mut invites = Vec::new();
    if let Some(user) = &user {
        let workspaces = ctx.state.org.workspaces().await?;
        let live: Vec<_> = workspaces.iter().filter(|w| !w.is_archived()).collect();
        // A few at a time: the large organization has 100 workspaces.
        let org = Arc::clone(&ctx.state.org);
        let ids: Vec<String> = live.iter().map(|w| w.id.clone()).collect();
        let lists: Vec<_> = futures_util::stream::iter(ids.into_iter().map(move |id| {
            let org = Arc::clone(&org);
            async move { org.workspace_members(&id).await }
        }))
        .buffered(8)
        .try_collect()
        .await?;
        for (workspace, members) in live.iter().zip(lists) {
            if let Some(m) = members.iter().find(|m| m.user_id == user.id) {
                memberships.push((
                    workspace.id.clone(),
                    workspace.name.clone(),
                    m.workspace_role.as_str().to_owned(),
                ));
            }
        }
        let all_invites = ctx.state.org.invites().await?;
        invites = all_invites
            .iter()
            .filter(|i| {
                i.status == InviteStatus::Pending && i.email.eq_ignore_ascii_case(&user.email)
            })
            .cloned()
            .collect();
    }
    Ok(Holdings {
        user,
        keys,
        memberships,
        invites,
    })
}

// ---------------------------------------------------------------------------------------------
// Steps

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    DeactivateKey,
    ArchiveKey,
    DeleteInvite,
    RemoveMembership,
    RemoveMember,
}

impl StepKind {
    fn code(self) -> &'static str {
        match self {
            StepKind::DeactivateKey => "deactivate_key",
            StepKind::ArchiveKey => "archive_key",
            StepKind::DeleteInvite => "delete_invite",
            StepKind::RemoveMembership => "remove_membership",
            StepKind::RemoveMember => "remove_member",
        }
    }

    fn parse(code: &str) -> Option<StepKind> {
        [
            StepKind::DeactivateKey,
            StepKind::ArchiveKey,
            StepKind::DeleteInvite,
            StepKind::RemoveMembership,
            StepKind::RemoveMember,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }

    /// Steps run in this order: stop the keys first, the member's removal last.
    fn order(self) -> u8 {
        match self {
            StepKind::DeactivateKey | StepKind::ArchiveKey => 0,
            StepKind::DeleteInvite => 1,
            StepKind::RemoveMembership => 2,
            StepKind::RemoveMember => 3,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            StepKind::DeactivateKey => "Deactivate key",
            StepKind::ArchiveKey => "Archive key (cannot be undone)",
            StepKind::DeleteInvite => "Delete pending invite",
            StepKind::RemoveMembership => "Remove from workspace",
            StepKind::RemoveMember => "Remove from the organization",
        }
    }

    fn is_removal(self) -> bool {
        matches!(
            self,
            StepKind::DeleteInvite | StepKind::RemoveMembership | StepKind::RemoveMember
        )
    }

    /// Plain words for an upstream refusal of this step.
    fn refusal_hint(self) -> &'static str {
        match self {
            StepKind::RemoveMember => "Anthropic does not let the Admin API remove organization admins (or owners). Remove this person in the Console (Settings → Members), then resume to finish.",
            StepKind::RemoveMembership => "Members with the organization admin or billing role belong to every workspace through their role, so they cannot be removed from one workspace. Removing them from the organization ends these memberships.",
            StepKind::DeactivateKey | StepKind::ArchiveKey => "Anthropic refused to change this key; it may already be archived or expired. Check the key's page.",
            StepKind::DeleteInvite => "Anthropic refused to delete this invite; it may have been accepted or have expired meanwhile.",
        }
    }
}

/// A step as planned (before it is stored).
pub struct PlannedStep {
    pub kind: &'static str,
    pub verb: &'static str,
    pub target_id: String,
    pub label: String,
}

/// Turns the ticked choices (`key:{id}`, `membership`, `invite`, `remove_member`) or the
/// preview's `step` fields into ordered steps, labelled from what the member holds.
fn plan_steps(user_id: &str, holdings: &Holdings, fields: &[(String, String)]) -> Vec<PlannedStep> {
    let mut chosen: Vec<(StepKind, String)> = Vec::new();
    for (name, value) in fields {
        let step = if let Some(key_id) = name.strip_prefix("key:") {
            match value.as_str() {
                "deactivate" => Some((StepKind::DeactivateKey, key_id.to_owned())),
                "archive" => Some((StepKind::ArchiveKey, key_id.to_owned())),
                _ => None,
            }
        } else {
            match name.as_str() {
                "membership" => Some((StepKind::RemoveMembership, value.clone())),
                "invite" => Some((StepKind::DeleteInvite, value.clone())),
                "remove_member" if value == "1" => {
                    Some((StepKind::RemoveMember, user_id.to_owned()))
                }
                "step" => value.split_once('|').and_then(|(kind, target)| {
                    StepKind::parse(kind).map(|k| (k, target.to_owned()))
                }),
                _ => None,
            }
        };
        if let Some(step) = step {
            if !chosen.contains(&step) {
                chosen.push(step);
            }
        }
    }
    // Only what the member actually holds: a forged field cannot reach anything else.
    chosen.retain(|(kind, target)| match kind {
        StepKind::DeactivateKey | StepKind::ArchiveKey => {
            holdings.keys.iter().any(|k| &k.id == target && is_live(k))
        }
        StepKind::DeleteInvite => holdings.invites.iter().any(|i| &i.id == target),
        StepKind::RemoveMembership => holdings.memberships.iter().any(|m| &m.0 == target),
        StepKind::RemoveMember => holdings.user.is_some() && target == user_id,
    });
    chosen.sort_by_key(|(kind, _)| kind.order());
    chosen
        .into_iter()
        .map(|(kind, target_id)| {
            let label = match kind {
                StepKind::DeactivateKey | StepKind::ArchiveKey => {
                    holdings.keys.iter().find(|k| k.id == target_id).map(|k| {
                        format!(
                            "{} ({})",
                            k.name,
                            k.partial_key_hint.as_deref().unwrap_or("no hint")
                        )
                    })
                }
                StepKind::DeleteInvite => holdings
                    .invites
                    .iter()
                    .find(|i| i.id == target_id)
                    .map(|i| format!("invite to {} as {}", i.email, i.role)),
                StepKind::RemoveMembership => holdings
                    .memberships
                    .iter()
                    .find(|m| m.0 == target_id)
                    .map(|m| format!("{} ({})", m.1, m.2)),
                StepKind::RemoveMember => Some(holdings.label(user_id)),
            }
            .unwrap_or_else(|| target_id.clone());
            PlannedStep {
                kind: kind.code(),
                verb: kind.verb(),
                target_id,
                label,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Pages: plan and preview

pub struct KeyChoice {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub workspace: String,
    pub status: String,
    pub live: bool,
    pub whose: String,
    /// What happens to the key when the member leaves, in plain words.
    pub fate: &'static str,
    /// The choice preselected: `leave` for keys that stop by themselves or are not the
    /// member's, `deactivate` for live keys that would keep working.
    pub default: &'static str,
}

/// Whether removing `user_id` from the organization stops `key` by itself: their personal
/// keys are archived by Anthropic (§5.6); workspace and service-account keys keep working.
fn stops_with_member(key: &ApiKey, user_id: &str) -> bool {
    matches!(key.kind(), KeyKind::Personal { user_id: u } if u == user_id)
}

/// What the plan says and preselects for a key of the member being offboarded. `removable`:
/// the member is still in the organization and the Admin API may remove them (not an admin).
fn key_choice(key: &ApiKey, user_id: &str, removable: bool) -> (&'static str, &'static str) {
    let live_default = if key.status == ApiKeyStatus::Active {
        "deactivate"
    } else {
        "leave"
    };
    match key.kind() {
        KeyKind::Personal { .. } if stops_with_member(key, user_id) && removable => (
            "Personal key: Anthropic archives it when they are removed from the organization.",
            "leave",
        ),
        KeyKind::Personal { .. } if stops_with_member(key, user_id) => (
            "Personal key: it stops only when they are removed from the organization, which Orgkeeper cannot do here.",
            live_default,
        ),
        KeyKind::Personal { .. } => (
            "Someone else's personal key they created: it stops when that person leaves, not them.",
            "leave",
        ),
        KeyKind::ServiceAccount { .. } => (
            "Service-account key: it keeps working after they leave, as it belongs to the service account.",
            "leave",
        ),
        KeyKind::Workspace | KeyKind::Unknown => (
            "Workspace key: it keeps working after they leave. Deactivate or archive it unless a service still needs it.",
            live_default,
        ),
    }
}

#[derive(sqlx::FromRow)]
pub struct RunSummary {
    pub id: i64,
    pub created_at: String,
    pub created_by: String,
    pub state: String,
}

#[derive(Template)]
#[template(path = "offboarding/plan.html")]
struct PlanPage {
    layout: Layout,
    user_id: String,
    user_label: String,
    is_member: bool,
    is_admin: bool,
    keys: Vec<KeyChoice>,
    memberships: Vec<(String, String, String)>,
    invites: Vec<Invite>,
    runs: Vec<RunSummary>,
    error: Option<String>,
}

async fn render_plan(
    ctx: &Ctx,
    user_id: &str,
    status: StatusCode,
    error: Option<String>,
) -> AppResult<Response> {
    let holdings = holdings(ctx, user_id).await?;
    let runs: Vec<RunSummary> = sqlx::query_as(
        "SELECT id, created_at, created_by, state FROM offboarding_runs WHERE user_id = ? ORDER BY id DESC",
    )
    .bind(user_id)
    .fetch_all(&ctx.state.db)
    .await?;
    if holdings.user.is_none() && holdings.keys.is_empty() && runs.is_empty() {
        return Err(AppError::NotFound);
    }
    let names = Names::load(&ctx.state).await;
    let is_admin = holdings
        .user
        .as_ref()
        .is_some_and(|u| matches!(u.role.as_str(), "admin" | "owner" | "primary_owner"));
    let removable = holdings.user.is_some() && !is_admin;
    let page = PlanPage {
        layout: ctx
            .layout(format!("Offboard {}", holdings.label(user_id)), "members")
            .await,
        user_id: user_id.to_owned(),
        user_label: holdings.label(user_id),
        is_member: holdings.user.is_some(),
        is_admin,
        keys: holdings
            .keys
            .iter()
            .map(|k| {
                let (fate, default) = key_choice(k, user_id, removable);
                KeyChoice {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    hint: k.partial_key_hint.clone().unwrap_or_default(),
                    workspace: names.workspace(k),
                    status: k.status.as_str().to_owned(),
                    live: is_live(k),
                    whose: names.whose(k),
                    fate,
                    default,
                }
            })
            .collect(),
        memberships: holdings.memberships,
        invites: holdings.invites,
        runs,
        error,
    };
    render(status, &page)
}

pub async fn plan(ctx: Ctx, Path(user_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    render_plan(&ctx, &user_id, StatusCode::OK, None).await
}

fn fields(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

#[derive(Template)]
#[template(path = "offboarding/preview.html")]
struct PreviewPage {
    layout: Layout,
    user_id: String,
    user_label: String,
    steps: Vec<PlannedStep>,
    /// Live personal keys with no step that Anthropic archives when the member is removed.
    stop_by_themselves: Vec<String>,
    /// Live keys with no step that keep working after this run.
    keep_working: Vec<String>,
    /// The re-read failed: the steps are from the model as last read.
    unchecked: Option<String>,
    /// Chosen steps whose target changed outside Orgkeeper meanwhile, no longer steps.
    dropped: Vec<String>,
}

/// The steps chosen in the form, or (as `Err`) the plan page again saying why there are none.
async fn chosen_steps(
    ctx: &Ctx,
    user_id: &str,
    body: &str,
    nothing: &str,
) -> AppResult<Result<(Holdings, Vec<PlannedStep>), Response>> {
    ctx.require(Permission::ManageOrganization).await?;
    let holdings = holdings(ctx, user_id).await?;
    let steps = plan_steps(user_id, &holdings, &fields(body));
    if steps.is_empty() {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(Err(
            render_plan(ctx, user_id, status, Some(nothing.into())).await?
        ));
    }
    Ok(Ok((holdings, steps)))
}

/// What a step's re-read must fetch so the preview shows its target as it is now.
fn step_target(user_id: &str, step: &PlannedStep) -> Touched {
    let target = step.target_id.clone();
    match StepKind::parse(step.kind) {
        Some(StepKind::DeactivateKey | StepKind::ArchiveKey) => Touched::Key(target),
        Some(StepKind::DeleteInvite) => Touched::Invite(target),
        Some(StepKind::RemoveMembership) => Touched::Membership {
            workspace: target,
            user: user_id.to_owned(),
        },
        Some(StepKind::RemoveMember) | None => Touched::User(user_id.to_owned()),
    }
}

/// `POST /members/{id}/offboard`: the ticked choices become an ordered list of steps. The
/// preview is the last look before irreversible steps, so it re-reads each chosen target (and
/// the member's keys) first: a step whose target changed outside Orgkeeper meanwhile is
/// dropped and named, and the change is recorded in the audit log.
pub async fn preview(
    ctx: Ctx,
    Path(user_id): Path<String>,
    FormBody(body): FormBody,
) -> AppResult<Response> {
    let (_, chosen) = match chosen_steps(
        &ctx,
        &user_id,
        &body,
        "Nothing was ticked, so there is nothing to do.",
    )
    .await?
    {
        Ok(chosen) => chosen,
        Err(page) => return Ok(page),
    };
    let mut targets = vec![Touched::KeysOfUser(user_id.clone())];
    for step in &chosen {
        let target = step_target(&user_id, step);
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let unchecked = crate::web::org::check_current(&ctx, &targets).await.err();
    let holdings = holdings(&ctx, &user_id).await?;
    let steps = plan_steps(&user_id, &holdings, &fields(&body));
    let dropped: Vec<String> = chosen
        .iter()
        .filter(|c| {
            !steps
                .iter()
                .any(|s| s.kind == c.kind && s.target_id == c.target_id)
        })
        .map(|c| format!("{}: {}", c.verb, c.label))
        .collect();
    if steps.is_empty() {
        let message = format!(
            "Everything you chose changed outside Orgkeeper since the choices were shown (recorded in the audit log), so nothing is left to do: {}.",
            dropped.join("; ")
        );
        return render_plan(&ctx, &user_id, StatusCode::CONFLICT, Some(message)).await;
    }
    let removing = steps
        .iter()
        .any(|s| s.kind == StepKind::RemoveMember.code());
    let mut stop_by_themselves = Vec::new();
    let mut keep_working = Vec::new();
    for k in holdings.keys.iter().filter(|k| is_live(k)) {
        if steps.iter().any(|s| s.target_id == k.id) {
            continue;
        }
        let label = format!(
            "{} ({})",
            k.name,
            k.partial_key_hint.as_deref().unwrap_or("no hint")
        );
        if removing && stops_with_member(k, &user_id) {
            stop_by_themselves.push(label);
        } else {
            keep_working.push(label);
        }
    }
    let page = PreviewPage {
        unchecked,
        dropped,
        stop_by_themselves,
        keep_working,
        layout: ctx
            .layout(
                format!("Offboard {}: check the steps", holdings.label(&user_id)),
                "members",
            )
            .await,
        user_label: holdings.label(&user_id),
        user_id,
        steps,
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------------------------
// Runs

#[derive(sqlx::FromRow, Clone)]
pub struct StoredStep {
    pub position: i64,
    pub kind: String,
    pub target_id: String,
    pub label: String,
    pub state: String,
    pub error: Option<String>,
    pub request_id: Option<String>,
}

impl StoredStep {
    pub fn verb(&self) -> &'static str {
        StepKind::parse(&self.kind).map_or("Unknown step", StepKind::verb)
    }
}

#[derive(sqlx::FromRow)]
struct Run {
    id: i64,
    user_id: String,
    user_label: String,
    created_at: String,
    created_by: String,
    state: String,
}

/// `POST /members/{id}/offboard/start`: stores the run and its steps, then runs them.
pub async fn start(
    ctx: Ctx,
    Path(user_id): Path<String>,
    FormBody(body): FormBody,
) -> AppResult<Response> {
    let nothing = "Nothing was left to do (the steps may have been done meanwhile).";
    let (holdings, steps) = match chosen_steps(&ctx, &user_id, &body, nothing).await? {
        Ok(chosen) => chosen,
        Err(page) => return Ok(page),
    };
    let label = holdings.label(&user_id);
    let now = ts(Utc::now());
    let mut tx = ctx.state.db.begin().await?;
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO offboarding_runs (user_id, user_label, created_at, created_by, state, updated_at) VALUES (?, ?, ?, ?, 'running', ?) RETURNING id",
    )
    .bind(&user_id)
    .bind(&label)
    .bind(&now)
    .bind(&ctx.account.username)
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?;
    for (position, step) in steps.iter().enumerate() {
        sqlx::query(
            "INSERT INTO offboarding_steps (run_id, position, kind, target_id, label, state) VALUES (?, ?, ?, ?, ?, 'pending')",
        )
        .bind(run_id)
        .bind(position as i64)
        .bind(step.kind)
        .bind(&step.target_id)
        .bind(&step.label)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    ctx.audit(
        Action::OffboardingStarted,
        member_target(&user_id, &label),
        json!({
            "run": run_id,
            "steps": steps.iter().map(|s| json!({ "kind": s.kind, "target": s.target_id, "label": s.label })).collect::<Vec<_>>(),
        }),
        Outcome::Ok,
    )
    .await?;
    execute(&ctx, run_id, &user_id, &label).await?;
    Ok(Redirect::to(&format!("/members/{user_id}/offboard/runs/{run_id}")).into_response())
}

/// `POST …/runs/{run}/resume`: retries only the unfinished steps.
pub async fn resume(ctx: Ctx, Path((user_id, run_id)): Path<(String, i64)>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let run = load_run(&ctx, &user_id, run_id).await?;
    // Claim the run; a run left `running` by a crashed server can be taken after a while.
    let stale = ts(Utc::now() - Duration::minutes(10));
    let claimed = sqlx::query(
        "UPDATE offboarding_runs SET state = 'running', updated_at = ? WHERE id = ? AND (state = 'incomplete' OR (state = 'running' AND updated_at < ?))",
    )
    .bind(ts(Utc::now()))
    .bind(run_id)
    .bind(&stale)
    .execute(&ctx.state.db)
    .await?;
    if claimed.rows_affected() != 1 {
        ctx.flash(
            "info",
            if run.state == "completed" {
                "This offboarding is already complete."
            } else {
                "This offboarding is running right now; reload the page in a moment."
            },
        )
        .await;
    } else {
        ctx.audit(
            Action::OffboardingResumed,
            member_target(&user_id, &run.user_label),
            json!({ "run": run_id }),
            Outcome::Ok,
        )
        .await?;
        execute(&ctx, run_id, &user_id, &run.user_label).await?;
    }
    Ok(Redirect::to(&format!("/members/{user_id}/offboard/runs/{run_id}")).into_response())
}

async fn load_run(ctx: &Ctx, user_id: &str, run_id: i64) -> AppResult<Run> {
    sqlx::query_as(
        "SELECT id, user_id, user_label, created_at, created_by, state FROM offboarding_runs WHERE id = ? AND user_id = ?",
    )
    .bind(run_id)
    .bind(user_id)
    .fetch_optional(&ctx.state.db)
    .await?
    .ok_or(AppError::NotFound)
}

async fn steps_of(ctx: &Ctx, run_id: i64) -> AppResult<Vec<StoredStep>> {
    Ok(sqlx::query_as(
        "SELECT position, kind, target_id, label, state, error, request_id FROM offboarding_steps WHERE run_id = ? ORDER BY position",
    )
    .bind(run_id)
    .fetch_all(&ctx.state.db)
    .await?)
}

/// Runs the unfinished steps in order, stopping at the first failure. The run must already
/// be claimed (`running`).
async fn execute(ctx: &Ctx, run_id: i64, user_id: &str, label: &str) -> AppResult<()> {
    let steps = steps_of(ctx, run_id).await?;
    let mut failed = false;
    for step in steps.iter().filter(|s| s.state != "done") {
        let Some(kind) = StepKind::parse(&step.kind) else {
            continue;
        };
        let result = run_step(ctx, run_id, kind, step, user_id, label).await;
        let (state, error, request_id) = match result {
            Ok(Ok(())) => ("done", None, None),
            // A removal retried after an unclear failure: "not found" means it is gone.
            Ok(Err(e)) if kind.is_removal() && e.is_not_found() && step.state == "failed" => {
                ("done", None, None)
            }
            Ok(Err(e)) => {
                let mut message = e.user_message();
                if e.is_refusal() {
                    message = format!("{message} {}", kind.refusal_hint());
                }
                ("failed", Some(message), e.request_id().map(str::to_owned))
            }
            Err(refused) => {
                // The dashboard refused (audit log unavailable): record, stop, and say why.
                mark_step(
                    ctx,
                    run_id,
                    step.position,
                    "failed",
                    Some(refused.to_string()),
                    None,
                )
                .await?;
                mark_run(ctx, run_id, "incomplete").await?;
                return Err(refused);
            }
        };
        mark_step(ctx, run_id, step.position, state, error, request_id).await?;
        if state == "failed" {
            failed = true;
            break;
        }
    }
    if failed {
        mark_run(ctx, run_id, "incomplete").await?;
    } else {
        mark_run(ctx, run_id, "completed").await?;
        ctx.audit(
            Action::OffboardingCompleted,
            member_target(user_id, label),
            json!({ "run": run_id, "steps": steps.len() }),
            Outcome::Ok,
        )
        .await?;
    }
    Ok(())
}

async fn mark_step(
    ctx: &Ctx,
    run_id: i64,
    position: i64,
    state: &str,
    error: Option<String>,
    request_id: Option<String>,
) -> AppResult<()> {
    sqlx::query(
        "UPDATE offboarding_steps SET state = ?, error = ?, request_id = ?, finished_at = ? WHERE run_id = ? AND position = ?",
    )
    .bind(state)
    .bind(error)
    .bind(request_id)
    .bind(ts(Utc::now()))
    .bind(run_id)
    .bind(position)
    .execute(&ctx.state.db)
    .await?;
    Ok(())
}

async fn mark_run(ctx: &Ctx, run_id: i64, state: &str) -> AppResult<()> {
    sqlx::query("UPDATE offboarding_runs SET state = ?, updated_at = ? WHERE id = ?")
        .bind(state)
        .bind(ts(Utc::now()))
        .bind(run_id)
        .execute(&ctx.state.db)
        .await?;
    Ok(())
}

/// One step: its own audited organization change, through the same service as its page.
async fn run_step(
    ctx: &Ctx,
    run_id: i64,
    kind: StepKind,
    step: &StoredStep,
    user_id: &str,
    user_label: &str,
) -> AppResult<Result<(), ApiError>> {
    let (services, caller) = (&ctx.state.services, ctx.caller());
    let context = json!({ "offboarding": run_id, "label": step.label });
    let outcome = match kind {
        StepKind::DeactivateKey | StepKind::ArchiveKey => {
            let to = if kind == StepKind::DeactivateKey {
                ApiKeyStatus::Inactive
            } else {
                ApiKeyStatus::Archived
            };
            let keys = ctx.state.org.api_keys().await?;
            let known = keys.iter().find(|k| k.id == step.target_id);
            let key = match known {
                Some(key) => key.into(),
                None => KeyRef {
                    id: &step.target_id,
                    name: &step.label,
                    status: None,
                    workspace_id: None,
                },
            };
            service::keys::set_status(services, &caller, key, to, context)
                .await?
                .map(|_| ())
        }
        StepKind::DeleteInvite => {
            let invites = ctx.state.org.invites().await?;
            let email = invites
                .iter()
                .find(|i| i.id == step.target_id)
                .map_or(step.label.as_str(), |i| i.email.as_str());
            service::invites::delete(services, &caller, &step.target_id, email, context)
                .await?
                .map(|_| ())
        }
        StepKind::RemoveMembership => {
            let workspaces = ctx.state.org.workspaces().await?;
            let workspace = workspaces
                .iter()
                .find(|w| w.id == step.target_id)
                .cloned()
                .ok_or(AppError::NotFound)?;
            let person = (user_id, user_label);
            service::workspaces::remove_member(services, &caller, &workspace, person, None, context)
                .await?
                .map(|_| ())
        }
        StepKind::RemoveMember => {
            service::members::remove(services, &caller, user_id, user_label, context)
                .await?
                .map(|_| ())
        }
    };
    Ok(outcome)
}

#[derive(Template)]
#[template(path = "offboarding/run.html")]
struct RunPage {
    layout: Layout,
    user_id: String,
    run_id: i64,
    user_label: String,
    created_at: String,
    created_by: String,
    state: String,
    steps: Vec<StoredStep>,
}

pub async fn show_run(
    ctx: Ctx,
    Path((user_id, run_id)): Path<(String, i64)>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let run = load_run(&ctx, &user_id, run_id).await?;
    let steps = steps_of(&ctx, run.id).await?;
    let page = RunPage {
        layout: ctx
            .layout(format!("Offboarding {}", run.user_label), "members")
            .await,
        user_id: run.user_id,
        run_id: run.id,
        user_label: run.user_label,
        created_at: run.created_at,
        created_by: run.created_by,
        state: run.state,
        steps,
    };
    render(StatusCode::OK, &page)
}
