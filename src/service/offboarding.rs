//! Offboarding a member: what they hold (keys they created, workspace memberships, pending
//! invites to their email), the plan (each key's fate, the steps in their order), and runs
//! that carry the steps out one audited change at a time. The offboarding wizard and SCIM
//! deprovisioning both come here.
//!
//! A run and each step's state are stored in SQLite: when a step fails, the run stops there
//! (later steps wait, so nothing happens out of order, e.g. removing the member before their
//! keys are stopped) and resuming retries only the unfinished steps.

use std::sync::Arc;

use chrono::Duration;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;

use super::keys::KeyRef;
use super::members::member_target;
use super::{Caller, ServiceError, Services};
use crate::anthropic::{ApiError, ApiKey, ApiKeyStatus, Invite, InviteStatus, KeyKind, User};
use crate::audit::{Action, Outcome};
use crate::auth::Permission;
use crate::db::ts;
use crate::org::keys::is_live;
use crate::org::Touched;

/// A run left `running` by a server that stopped can be taken over after this long.
const STALE_RUN_MINUTES: i64 = 10;

/// What the member holds, as the caller may see it, read from the model.
pub struct Holdings {
    pub user: Option<User>,
    pub keys: Vec<ApiKey>,
    /// (workspace id, workspace name, workspace role)
    pub memberships: Vec<(String, String, String)>,
    pub invites: Vec<Invite>,
}

impl Holdings {
    /// "Ada Lovelace <ada@example.com>", or what is known.
    pub fn label(&self, user_id: &str) -> String {
        match &self.user {
            Some(u) if !u.name.is_empty() => format!("{} <{}>", u.name, u.email),
            Some(u) => u.email.clone(),
            None => user_id.to_owned(),
        }
    }

    /// Organization admins (and owners) cannot be removed through the Admin API.
    pub fn is_admin(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| matches!(u.role.as_str(), "admin" | "owner" | "primary_owner"))
    }

    /// The member is still in the organization and the Admin API may remove them.
    pub fn removable(&self) -> bool {
        self.user.is_some() && !self.is_admin()
    }
}

/// Keys the member created or that act as them.
fn belongs_to(key: &ApiKey, user_id: &str) -> bool {
    key.created_by.as_ref().is_some_and(|c| &*c.id == user_id)
        || key.principal_user_id() == Some(user_id)
}

/// What `user_id` holds now, as far as the caller may see (keys of the caller's workspaces).
pub async fn holdings(
    services: &Services,
    caller: &Caller,
    user_id: &str,
) -> Result<Holdings, ServiceError> {
    let org = &services.org;
    let users = org.users().await?;
    let user = users.iter().find(|u| u.id == user_id).cloned();
    let keys = org.api_keys().await?;
    let mut keys: Vec<ApiKey> = keys
        .iter()
        .filter(|k| belongs_to(k, user_id) && caller.may_reach_key(k))
        .cloned()
        .collect();
    keys.sort_by_key(|k| (!is_live(k), std::cmp::Reverse(k.created_at)));
    let mut memberships = Vec::new();
    let mut invites = Vec::new();
    if let Some(user) = &user {
        let workspaces = org.workspaces().await?;
        let live: Vec<_> = workspaces.iter().filter(|w| !w.is_archived()).collect();
        // A few at a time: the large organization has 100 workspaces.
        let model = Arc::clone(org);
        let ids: Vec<String> = live.iter().map(|w| w.id.clone()).collect();
        let lists: Vec<_> = futures_util::stream::iter(ids.into_iter().map(move |id| {
            let model = Arc::clone(&model);
            async move { model.workspace_members(&id).await }
        }))
        .buffered(8)
        .try_collect()
        .await?;
        for (workspace, members) in live.iter().zip(lists) {
            if let Some(m) = members.iter().find(|m| *m.user_id == *user.id) {
                memberships.push((
                    workspace.id.clone(),
                    workspace.name.clone(),
                    m.workspace_role.as_str().to_owned(),
                ));
            }
        }
        let all_invites = org.invites().await?;
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
// The plan

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    DeactivateKey,
    ArchiveKey,
    DeleteInvite,
    RemoveMembership,
    RemoveMember,
}

impl StepKind {
    pub fn code(self) -> &'static str {
        match self {
            StepKind::DeactivateKey => "deactivate_key",
            StepKind::ArchiveKey => "archive_key",
            StepKind::DeleteInvite => "delete_invite",
            StepKind::RemoveMembership => "remove_membership",
            StepKind::RemoveMember => "remove_member",
        }
    }

    pub fn parse(code: &str) -> Option<StepKind> {
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

    pub fn verb(self) -> &'static str {
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

/// One step chosen for a member: what to do, to which target (a key, workspace or invite id,
/// or the member's own id for their removal).
pub type Wanted = (StepKind, String);

/// A step as planned (before it is stored).
pub struct PlannedStep {
    pub kind: &'static str,
    pub verb: &'static str,
    pub target_id: String,
    pub label: String,
}

/// The wanted steps that the member really holds, each once, in the order they run, labelled
/// from what the member holds: a forged choice cannot reach anything else.
pub fn plan(user_id: &str, holdings: &Holdings, wanted: &[Wanted]) -> Vec<PlannedStep> {
    let mut chosen: Vec<Wanted> = Vec::new();
    for step in wanted {
        if !chosen.contains(step) {
            chosen.push(step.clone());
        }
    }
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
                StepKind::DeactivateKey | StepKind::ArchiveKey => holdings
                    .keys
                    .iter()
                    .find(|k| k.id == target_id)
                    .map(key_label),
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

fn key_label(key: &ApiKey) -> String {
    format!(
        "{} ({})",
        key.name,
        key.partial_key_hint.as_deref().unwrap_or("no hint")
    )
}

/// Whether removing `user_id` from the organization stops `key` by itself: their personal
/// keys are archived by Anthropic (§5.6); workspace and service-account keys keep working.
pub fn stops_with_member(key: &ApiKey, user_id: &str) -> bool {
    matches!(key.kind(), KeyKind::Personal { user_id: u } if u == user_id)
}

/// What happens to a key of the member being offboarded, in plain words, and the choice to
/// preselect: `leave` for keys that stop by themselves or are not the member's, `deactivate`
/// for active keys that would keep working. `removable`: see [`Holdings::removable`].
pub fn key_fate(key: &ApiKey, user_id: &str, removable: bool) -> (&'static str, &'static str) {
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

/// The plan as last shown before it runs.
pub struct Preview {
    pub label: String,
    pub steps: Vec<PlannedStep>,
    /// Live personal keys with no step that Anthropic archives when the member is removed.
    pub stop_by_themselves: Vec<String>,
    /// Live keys with no step that keep working after this run.
    pub keep_working: Vec<String>,
    /// The re-read failed: the steps are from the model as last read.
    pub unchecked: Option<String>,
    /// Chosen steps whose target changed outside Orgkeeper meanwhile, no longer steps.
    pub dropped: Vec<String>,
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

/// The last look before irreversible steps: each chosen target (and the member's keys) is
/// re-read first, so a step whose target changed outside Orgkeeper meanwhile is dropped and
/// named, and the change recorded. `Invalid` when nothing is (or is left) to do.
pub async fn preview(
    services: &Services,
    caller: &Caller,
    user_id: &str,
    wanted: &[Wanted],
) -> Result<Preview, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let before = holdings(services, caller, user_id).await?;
    let chosen = plan(user_id, &before, wanted);
    if chosen.is_empty() {
        return Err(ServiceError::Invalid(
            "Nothing was ticked, so there is nothing to do.".into(),
        ));
    }
    let mut targets = vec![Touched::KeysOfUser(user_id.to_owned())];
    for step in &chosen {
        let target = step_target(user_id, step);
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let unchecked = super::sync::check_current(services, &targets).await.err();
    let holdings = holdings(services, caller, user_id).await?;
    let steps = plan(user_id, &holdings, wanted);
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
        return Err(ServiceError::Conflict(format!(
            "Everything you chose changed outside Orgkeeper since the choices were shown (recorded in the audit log), so nothing is left to do: {}.",
            dropped.join("; ")
        )));
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
        if removing && stops_with_member(k, user_id) {
            stop_by_themselves.push(key_label(k));
        } else {
            keep_working.push(key_label(k));
        }
    }
    Ok(Preview {
        label: holdings.label(user_id),
        steps,
        stop_by_themselves,
        keep_working,
        unchecked,
        dropped,
    })
}

// ---------------------------------------------------------------------------------------------
// Runs

#[derive(sqlx::FromRow)]
pub struct RunSummary {
    pub id: i64,
    pub created_at: String,
    pub created_by: String,
    pub state: String,
}

#[derive(sqlx::FromRow)]
pub struct Run {
    pub id: i64,
    pub user_id: String,
    pub user_label: String,
    pub created_at: String,
    pub created_by: String,
    pub state: String,
}

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

/// The member's runs, newest first.
pub async fn runs_of(services: &Services, user_id: &str) -> Result<Vec<RunSummary>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT id, created_at, created_by, state FROM offboarding_runs WHERE user_id = ? ORDER BY id DESC",
    )
    .bind(user_id)
    .fetch_all(&services.db)
    .await?)
}

pub async fn run(services: &Services, user_id: &str, run_id: i64) -> Result<Run, ServiceError> {
    sqlx::query_as(
        "SELECT id, user_id, user_label, created_at, created_by, state FROM offboarding_runs WHERE id = ? AND user_id = ?",
    )
    .bind(run_id)
    .bind(user_id)
    .fetch_optional(&services.db)
    .await?
    .ok_or(ServiceError::NotFound)
}

pub async fn steps_of(services: &Services, run_id: i64) -> Result<Vec<StoredStep>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT position, kind, target_id, label, state, error, request_id FROM offboarding_steps WHERE run_id = ? ORDER BY position",
    )
    .bind(run_id)
    .fetch_all(&services.db)
    .await?)
}

/// Stores a run of the wanted steps (those the member really holds), records it, and carries
/// it out. Returns the run's id; `Invalid` when nothing is left to do.
pub async fn start(
    services: &Services,
    caller: &Caller,
    user_id: &str,
    wanted: &[Wanted],
) -> Result<i64, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let holdings = holdings(services, caller, user_id).await?;
    let steps = plan(user_id, &holdings, wanted);
    if steps.is_empty() {
        return Err(ServiceError::Invalid(
            "Nothing was left to do (the steps may have been done meanwhile).".into(),
        ));
    }
    let label = holdings.label(user_id);
    let now = ts(services.clock.now());
    let mut tx = crate::db::write_tx(&services.db).await?;
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO offboarding_runs (user_id, user_label, created_at, created_by, state, updated_at) VALUES (?, ?, ?, ?, 'running', ?) RETURNING id",
    )
    .bind(user_id)
    .bind(&label)
    .bind(&now)
    .bind(caller.name())
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
    services
        .record(
            caller,
            Action::OffboardingStarted,
            member_target(user_id, &label),
            json!({
                "run": run_id,
                "steps": steps.iter().map(|s| json!({ "kind": s.kind, "target": s.target_id, "label": s.label })).collect::<Vec<_>>(),
            }),
            Outcome::Ok,
        )
        .await?;
    execute(services, caller, run_id, user_id, &label).await?;
    Ok(run_id)
}

/// What [`resume`] found.
pub enum Resumed {
    /// The unfinished steps were run again.
    Ran,
    AlreadyComplete,
    /// Someone else is running it right now.
    Running,
}

/// Retries only the unfinished steps of a run; a run left `running` by a server that stopped
/// is taken over after a while.
pub async fn resume(
    services: &Services,
    caller: &Caller,
    user_id: &str,
    run_id: i64,
) -> Result<Resumed, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let stored = run(services, user_id, run_id).await?;
    let now = services.clock.now();
    let stale = ts(now - Duration::minutes(STALE_RUN_MINUTES));
    let claimed = sqlx::query(
        "UPDATE offboarding_runs SET state = 'running', updated_at = ? WHERE id = ? AND (state = 'incomplete' OR (state = 'running' AND updated_at < ?))",
    )
    .bind(ts(now))
    .bind(run_id)
    .bind(&stale)
    .execute(&services.db)
    .await?;
    if claimed.rows_affected() != 1 {
        return Ok(if stored.state == "completed" {
            Resumed::AlreadyComplete
        } else {
            Resumed::Running
        });
    }
    services
        .record(
            caller,
            Action::OffboardingResumed,
            member_target(user_id, &stored.user_label),
            json!({ "run": run_id }),
            Outcome::Ok,
        )
        .await?;
    execute(services, caller, run_id, user_id, &stored.user_label).await?;
    Ok(Resumed::Ran)
}

/// Runs the unfinished steps in order, stopping at the first failure. The run must already
/// be claimed (`running`).
async fn execute(
    services: &Services,
    caller: &Caller,
    run_id: i64,
    user_id: &str,
    label: &str,
) -> Result<(), ServiceError> {
    let steps = steps_of(services, run_id).await?;
    let mut failed = false;
    for step in steps.iter().filter(|s| s.state != "done") {
        let Some(kind) = StepKind::parse(&step.kind) else {
            continue;
        };
        let result = run_step(services, caller, run_id, kind, step, user_id, label).await;
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
                let why = Some(refused.to_string());
                mark_step(services, run_id, step.position, "failed", why, None).await?;
                mark_run(services, run_id, "incomplete").await?;
                return Err(refused);
            }
        };
        mark_step(services, run_id, step.position, state, error, request_id).await?;
        if state == "failed" {
            failed = true;
            break;
        }
    }
    if failed {
        mark_run(services, run_id, "incomplete").await?;
    } else {
        mark_run(services, run_id, "completed").await?;
        services
            .record(
                caller,
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
    services: &Services,
    run_id: i64,
    position: i64,
    state: &str,
    error: Option<String>,
    request_id: Option<String>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE offboarding_steps SET state = ?, error = ?, request_id = ?, finished_at = ? WHERE run_id = ? AND position = ?",
    )
    .bind(state)
    .bind(error)
    .bind(request_id)
    .bind(ts(services.clock.now()))
    .bind(run_id)
    .bind(position)
    .execute(&services.db)
    .await?;
    Ok(())
}

async fn mark_run(services: &Services, run_id: i64, state: &str) -> Result<(), ServiceError> {
    sqlx::query("UPDATE offboarding_runs SET state = ?, updated_at = ? WHERE id = ?")
        .bind(state)
        .bind(ts(services.clock.now()))
        .bind(run_id)
        .execute(&services.db)
        .await?;
    Ok(())
}

/// One step: its own audited organization change, through the same service as its page.
async fn run_step(
    services: &Services,
    caller: &Caller,
    run_id: i64,
    kind: StepKind,
    step: &StoredStep,
    user_id: &str,
    user_label: &str,
) -> Result<Result<(), ApiError>, ServiceError> {
    let context = json!({ "offboarding": run_id, "label": step.label });
    let outcome = match kind {
        StepKind::DeactivateKey | StepKind::ArchiveKey => {
            let to = if kind == StepKind::DeactivateKey {
                ApiKeyStatus::Inactive
            } else {
                ApiKeyStatus::Archived
            };
            let keys = services.org.api_keys().await?;
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
            super::keys::set_status(services, caller, key, to, context)
                .await?
                .map(|_| ())
        }
        StepKind::DeleteInvite => {
            let invites = services.org.invites().await?;
            let email = invites
                .iter()
                .find(|i| i.id == step.target_id)
                .map_or(step.label.as_str(), |i| i.email.as_str());
            super::invites::delete(services, caller, &step.target_id, email, context)
                .await?
                .map(|_| ())
        }
        StepKind::RemoveMembership => {
            let workspaces = services.org.workspaces().await?;
            let workspace = workspaces
                .iter()
                .find(|w| w.id == step.target_id)
                .cloned()
                .ok_or(ServiceError::NotFound)?;
            let person = (user_id, user_label);
            super::workspaces::remove_member(services, caller, &workspace, person, None, context)
                .await?
                .map(|_| ())
        }
        StepKind::RemoveMember => {
            super::members::remove(services, caller, user_id, user_label, context)
                .await?
                .map(|_| ())
        }
    };
    Ok(outcome)
}
