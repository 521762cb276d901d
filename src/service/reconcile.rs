//! Recovery at start-up: intents a crash left without an outcome.
//!
//! `org_change` writes an intent, calls the Admin API, then writes the outcome. A process
//! killed in between leaves the intent alone, and nobody can tell from the log whether the
//! change happened. Before the server serves, [`run`] looks at every such intent written before
//! this process started, reads the target's state (upstream, or Orgkeeper's own tables for
//! local changes) and appends the intent's outcome: `ok` when the change is visible, `failed`
//! when it visibly is not, and `failed` with `"resolution": "unknown"` when it cannot be told.
//! Each is marked `"reconciled_after_restart": true` and written by `system (recovery)`.
//!
//! No normal outcome can race with this: it runs before the router serves and before any job
//! starts, only looks at intents older than this process, and the audit log refuses a second
//! outcome for one intent inside the write transaction.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use rust_decimal::Decimal;

use super::{schedules, Services};
use crate::anthropic::{
    ApiError, ApiErrorKind, InviteFilter, InviteStatus, SpendLimitFilter, SpendLimitScope,
    WorkspaceFilter, WorkspaceRateLimitParams,
};
use crate::audit::{
    Action, Actor, AuditError, NewEntry, Record, Resolution, Source, Target, RECOVERY_ACTOR,
};
use crate::auth::accounts;
use crate::usage_store as store;

/// The whole recovery may take this long; what is left then is resolved as unknown. Every
/// single call is bounded by the client's own deadline as well.
pub const RECOVERY_BUDGET: Duration = Duration::from_secs(30);

/// What the recovery decided for one intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub intent_seq: i64,
    pub outcome_seq: i64,
    pub resolution: Resolution,
}

/// The state found, in words for the audit page.
struct Verdict {
    resolution: Resolution,
    reason: String,
}

fn applied(reason: impl Into<String>) -> Verdict {
    Verdict {
        resolution: Resolution::Applied,
        reason: reason.into(),
    }
}

fn not_applied(reason: impl Into<String>) -> Verdict {
    Verdict {
        resolution: Resolution::NotApplied,
        reason: reason.into(),
    }
}

fn unknown(reason: impl Into<String>) -> Verdict {
    Verdict {
        resolution: Resolution::Unknown,
        reason: reason.into(),
    }
}

/// Resolves every intent written before `started_at` that has no outcome. Returns what was
/// appended; an intent someone else resolved meanwhile is skipped.
pub async fn run(
    services: &Services,
    started_at: DateTime<Utc>,
) -> Result<Vec<Resolved>, AuditError> {
    let intents = services.audit.unresolved_intents(started_at).await?;
    if intents.is_empty() {
        return Ok(Vec::new());
    }
    tracing::warn!(
        count = intents.len(),
        "changes were interrupted by a crash or kill; checking what happened to each"
    );
    let mut checker = Checker {
        services,
        give_up_at: Instant::now() + RECOVERY_BUDGET,
        unreachable: None,
    };
    let mut resolved = Vec::new();
    for intent in intents {
        let verdict = checker.check(&intent).await;
        let entry = resolution_entry(&intent, &verdict);
        match services.audit.append(entry).await {
            Ok(outcome_seq) => resolved.push(Resolved {
                intent_seq: intent.seq,
                outcome_seq,
                resolution: verdict.resolution,
            }),
            Err(AuditError::AlreadyResolved { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    tracing::info!(count = resolved.len(), "interrupted changes resolved");
    Ok(resolved)
}

/// The outcome record: the intent's action, target and details, plus the resolution.
fn resolution_entry(intent: &Record, verdict: &Verdict) -> NewEntry {
    let mut details = match &intent.details {
        Value::Object(map) => map.clone(),
        other => {
            let mut map = serde_json::Map::new();
            map.insert("intent_details".into(), other.clone());
            map
        }
    };
    details.insert("reconciled_after_restart".into(), json!(true));
    details.insert("resolution".into(), json!(verdict.resolution.as_str()));
    details.insert("reason".into(), json!(verdict.reason));
    details.insert("intent_actor".into(), json!(intent.actor_name));
    let target = match (&intent.target_type, &intent.target_id) {
        (Some(kind), Some(id)) => Some(Target {
            kind: kind.clone(),
            id: id.clone(),
            label: intent.target_label.clone(),
        }),
        _ => None,
    };
    NewEntry {
        target,
        details: Value::Object(details),
        ..NewEntry::new(
            Actor::named(RECOVERY_ACTOR),
            Source::default(),
            intent.action.clone(),
            verdict.resolution.outcome(),
        )
    }
    .intent(intent.seq)
}

struct Checker<'a> {
    services: &'a Services,
    give_up_at: Instant,
    /// Set once the Admin API did not answer: the rest is not asked (each would wait again).
    unreachable: Option<String>,
}

/// A field of the intent's details as text (`after.role`).
fn text<'v>(details: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(details, |value, key| value.get(key))
        .and_then(Value::as_str)
}

impl Checker<'_> {
    /// One upstream read, within the recovery's budget. `Ok(None)` is a 404.
    async fn read<T>(
        &mut self,
        call: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<Option<T>, Verdict> {
        if let Some(reason) = &self.unreachable {
            return Err(unknown(reason.clone()));
        }
        let left = self.give_up_at.saturating_duration_since(Instant::now());
        let result = match tokio::time::timeout(left, call).await {
            Ok(result) => result,
            Err(_) => {
                let reason = "Orgkeeper ran out of time checking interrupted changes after the restart, so this one was not checked.".to_owned();
                self.unreachable = Some(reason.clone());
                return Err(unknown(reason));
            }
        };
        match result {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => {
                let reason = format!(
                    "Orgkeeper could not read the current state from the Admin API after the restart: {}",
                    error.user_message()
                );
                if matches!(
                    error.kind(),
                    ApiErrorKind::Transport | ApiErrorKind::Timeout
                ) {
                    self.unreachable = Some(reason.clone());
                }
                Err(unknown(reason))
            }
        }
    }

    async fn check(&mut self, intent: &Record) -> Verdict {
        let Some(action) = Action::from_code(&intent.action) else {
            return unknown(format!(
                "Orgkeeper does not know the action {:?}, so it cannot check it.",
                intent.action
            ));
        };
        match self.check_action(action, intent).await {
            Ok(verdict) | Err(verdict) => verdict,
        }
    }

    async fn check_action(&mut self, action: Action, intent: &Record) -> Result<Verdict, Verdict> {
        let d = &intent.details;
        let id = intent.target_id.as_deref().unwrap_or_default();
        let api = self.services.org.api().clone();
        let missing = || unknown("The record does not say enough to check the change.");
        Ok(match action {
            Action::MemberRoleChanged => {
                let after = text(d, &["after"]).ok_or_else(missing)?;
                match self.read(api.get_user(id)).await? {
                    Some(user) if user.role.as_str() == after => {
                        applied(format!("The member has the role {after} now."))
                    }
                    Some(user) => not_applied(format!(
                        "The member has the role {}, not {after}.",
                        user.role.as_str()
                    )),
                    None => unknown("The member is no longer in the organization."),
                }
            }
            Action::MemberRemoved => match self.read(api.get_user(id)).await? {
                None => applied("The member is no longer in the organization."),
                Some(_) => not_applied("The member is still in the organization."),
            },
            Action::InviteCreated => {
                let email = text(d, &["email"]).ok_or_else(missing)?;
                let filter = InviteFilter {
                    email: Some(email.to_owned()),
                    ..Default::default()
                };
                let invites = self
                    .read(api.list_all_invites(&filter))
                    .await?
                    .unwrap_or_default();
                if invites.iter().any(|i| i.email.eq_ignore_ascii_case(email)) {
                    applied(format!("An invite for {email} exists."))
                } else {
                    not_applied(format!("There is no invite for {email}."))
                }
            }
            Action::InviteDeleted => match self.read(api.get_invite(id)).await? {
                None => applied("The invite is gone."),
                Some(invite) if invite.status != InviteStatus::Pending => applied(format!(
                    "The invite is no longer open (it is {}).",
                    invite.status.as_str()
                )),
                Some(_) => not_applied("The invite is still open."),
            },
            Action::WorkspaceCreated => {
                let name = text(d, &["after", "name"]).ok_or_else(missing)?;
                let filter = WorkspaceFilter {
                    include_archived: true,
                    include_default: false,
                };
                let workspaces = self
                    .read(api.list_all_workspaces(&filter))
                    .await?
                    .unwrap_or_default();
                if workspaces.iter().any(|w| w.name == name) {
                    applied(format!("A workspace named {name:?} exists."))
                } else {
                    not_applied(format!("There is no workspace named {name:?}."))
                }
            }
            Action::WorkspaceUpdated => {
                let Some(workspace) = self.read(api.get_workspace(id)).await? else {
                    return Err(unknown("The workspace no longer exists."));
                };
                let name_ok = text(d, &["after", "name"]).is_none_or(|n| workspace.name == n);
                let color_ok = text(d, &["after", "display_color"])
                    .is_none_or(|c| workspace.display_color.eq_ignore_ascii_case(c));
                if name_ok && color_ok {
                    applied("The workspace's name and colour are as the change asked.")
                } else {
                    not_applied(format!(
                        "The workspace is named {:?} with colour {:?}, not as the change asked.",
                        workspace.name, workspace.display_color
                    ))
                }
            }
            Action::WorkspaceArchived => match self.read(api.get_workspace(id)).await? {
                Some(w) if w.archived_at.is_some() => applied("The workspace is archived."),
                Some(_) => not_applied("The workspace is not archived."),
                None => unknown("The workspace no longer exists."),
            },
            Action::WorkspaceMemberAdded
            | Action::WorkspaceMemberRoleChanged
            | Action::WorkspaceMemberRemoved => {
                let workspace = text(d, &["workspace_id"]).ok_or_else(missing)?;
                let user = text(d, &["user_id"]).unwrap_or(id);
                let after = text(d, &["after", "workspace_role"]);
                let member = self.read(api.get_workspace_member(workspace, user)).await?;
                match (action, member) {
                    (Action::WorkspaceMemberRemoved, None) => {
                        applied("The person is no longer in the workspace.")
                    }
                    (Action::WorkspaceMemberRemoved, Some(_)) => {
                        not_applied("The person is still in the workspace.")
                    }
                    (_, Some(m)) if after.is_none_or(|r| m.workspace_role.as_str() == r) => {
                        applied(format!(
                            "The person is in the workspace as {}.",
                            m.workspace_role.as_str()
                        ))
                    }
                    (Action::WorkspaceMemberAdded, None) => {
                        not_applied("The person is not in the workspace.")
                    }
                    (_, Some(m)) => not_applied(format!(
                        "The person's workspace role is {}, not as the change asked.",
                        m.workspace_role.as_str()
                    )),
                    (_, None) => unknown("The person is no longer in the workspace."),
                }
            }
            Action::KeyRenamed => {
                let after = text(d, &["after", "name"]).ok_or_else(missing)?;
                match self.read(api.get_api_key(id)).await? {
                    Some(key) if key.name == after => {
                        applied(format!("The key is named {after:?}."))
                    }
                    Some(key) => {
                        not_applied(format!("The key is named {:?}, not {after:?}.", key.name))
                    }
                    None => unknown("The key no longer exists."),
                }
            }
            Action::KeyDeactivated | Action::KeyReactivated | Action::KeyArchived => {
                let after = text(d, &["after", "status"]).ok_or_else(missing)?;
                match self.read(api.get_api_key(id)).await? {
                    Some(key) if key.status.as_str() == after => {
                        applied(format!("The key is {after}."))
                    }
                    Some(key) => {
                        not_applied(format!("The key is {}, not {after}.", key.status.as_str()))
                    }
                    None => unknown("The key no longer exists."),
                }
            }
            Action::SpendLimitSet | Action::SpendLimitRemoved => {
                let wanted = match id {
                    "organization" => SpendLimitScope::Organization,
                    workspace => SpendLimitScope::Workspace {
                        workspace_id: workspace.to_owned(),
                    },
                };
                let limits = self
                    .read(api.list_spend_limits(&SpendLimitFilter::default()))
                    .await?
                    .unwrap_or_default();
                let now = limits
                    .iter()
                    .find(|l| l.scope == wanted && l.period == "monthly")
                    .and_then(|l| l.amount_cents());
                let after = text(d, &["after", "amount_cents"]);
                match (action, now, after) {
                    (Action::SpendLimitRemoved, None, _) => {
                        applied("There is no spend limit here now.")
                    }
                    (Action::SpendLimitRemoved, Some(_), _) => {
                        not_applied("The spend limit is still set.")
                    }
                    (_, _, None) => return Err(missing()),
                    (_, Some(cents), Some(after)) if after.parse() == Ok(cents) => {
                        applied("The spend limit is set as the change asked.")
                    }
                    _ => not_applied("The spend limit is not set as the change asked."),
                }
            }
            Action::WorkspaceRateLimitChanged => {
                let rate_limit_id = text(d, &["rate_limit_id"]).ok_or_else(missing)?;
                let kind = text(d, &["limit_type"]).ok_or_else(missing)?;
                let wanted = d["after"]["override"].as_u64();
                // Without inherited values the list holds only the workspace's overrides.
                let entries = self
                    .read(api.all(&(id, &WorkspaceRateLimitParams::default())))
                    .await?
                    .ok_or_else(|| unknown("The workspace no longer exists."))?;
                let now = entries
                    .iter()
                    .filter(|e| e.rate_limit_id == rate_limit_id)
                    .flat_map(|e| &e.limits)
                    .find(|l| l.kind == kind)
                    .map(|l| l.value);
                if now == wanted {
                    applied("The workspace's rate limit is as the change asked.")
                } else {
                    not_applied("The workspace's rate limit is not as the change asked.")
                }
            }
            local => self.check_local(local, intent).await?,
        })
    }

    /// Changes to Orgkeeper's own tables: their state is right here.
    async fn check_local(&mut self, action: Action, intent: &Record) -> Result<Verdict, Verdict> {
        let d = &intent.details;
        let id = intent.target_id.as_deref().unwrap_or_default();
        let db = &self.services.db;
        let unreadable = |e: &dyn std::fmt::Display| unknown(format!("Orgkeeper's database: {e}"));
        let missing_token = || unknown("The record does not name a token.");
        // The account named by the target id, read as the dashboard reads accounts.
        let account = || async {
            let id: i64 = id
                .parse()
                .map_err(|_| unknown("The record does not name an account."))?;
            accounts::find_by_id(db, id)
                .await
                .map_err(|e| unreadable(&e))
        };
        Ok(match action {
            Action::AccountCreated => {
                let name = text(d, &["username"]).unwrap_or_default();
                match accounts::find_by_username(db, name)
                    .await
                    .map_err(|e| unreadable(&e))?
                {
                    Some(_) => applied(format!("The account {name} exists.")),
                    None => not_applied(format!("There is no account {name}.")),
                }
            }
            Action::AccountRoleChanged => {
                let after = text(d, &["after"]).unwrap_or_default();
                match account().await? {
                    Some(a) if a.role.as_str() == after => {
                        applied(format!("The account is {after}."))
                    }
                    Some(a) => {
                        not_applied(format!("The account is {}, not {after}.", a.role.as_str()))
                    }
                    None => unknown("The account no longer exists."),
                }
            }
            Action::AccountDisabled | Action::AccountEnabled => {
                let want = action == Action::AccountDisabled;
                let word = |d: bool| if d { "disabled" } else { "enabled" };
                match account().await? {
                    Some(a) if a.disabled == want => {
                        applied(format!("The account is {}.", word(a.disabled)))
                    }
                    Some(a) => not_applied(format!("The account is {}.", word(a.disabled))),
                    None => unknown("The account no longer exists."),
                }
            }
            Action::BudgetSet | Action::BudgetRemoved => {
                let budgets = store::budgets(db).await.map_err(|e| unreadable(&e))?;
                let amount = budgets
                    .iter()
                    .find(|b| b.scope == id)
                    .map(|b| b.amount_cents);
                let wanted = text(d, &["after", "amount_cents"]);
                let same = |stored: Decimal, wanted: &str| wanted.parse() == Ok(stored);
                match (action, amount, wanted) {
                    (Action::BudgetRemoved, None, _) => applied("There is no budget here now."),
                    (Action::BudgetRemoved, Some(_), _) => not_applied("The budget is still set."),
                    (_, Some(stored), Some(wanted)) if same(stored, wanted) => {
                        applied("The budget is set as the change asked.")
                    }
                    (_, _, None) => return Err(unknown("The record does not say the amount.")),
                    _ => not_applied("The budget is not set as the change asked."),
                }
            }
            Action::KeyArchiveScheduled => {
                let run_at = text(d, &["run_at"]).unwrap_or_default();
                let found: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM key_archive_schedules WHERE api_key_id = ? AND run_at = ?",
                )
                .bind(id)
                .bind(run_at)
                .fetch_optional(db)
                .await
                .map_err(|e| unreadable(&e))?;
                match found {
                    Some(_) => applied("The archive is scheduled."),
                    None => not_applied("No archive is scheduled for that time."),
                }
            }
            Action::KeyArchiveScheduleCancelled => {
                let schedule = d["schedule"].as_i64().unwrap_or_default();
                let found = schedules::find(self.services, schedule)
                    .await
                    .map_err(|e| unreadable(&e))?;
                match found.as_ref().map(|s| s.state.as_str()) {
                    Some("cancelled") => applied("The scheduled archive is cancelled."),
                    Some(other) => not_applied(format!("The scheduled archive is {other}.")),
                    None => unknown("The scheduled archive no longer exists."),
                }
            }
            Action::LimitRequestApproved | Action::LimitRequestDenied => {
                let request: i64 = id
                    .parse()
                    .map_err(|_| unknown("The record does not name a request."))?;
                let found = super::limits::find_request(self.services, request)
                    .await
                    .map_err(|e| unreadable(&e))?;
                let want = if action == Action::LimitRequestApproved {
                    "approved"
                } else {
                    "denied"
                };
                match found.map(|r| r.state) {
                    Some(state) if state == want => applied(format!("The request is {want}.")),
                    Some(state) => not_applied(format!("The request is {state}.")),
                    None => unknown("The request no longer exists."),
                }
            }
            Action::CostCenterCreated
            | Action::CostCenterRenamed
            | Action::CostCenterDeleted
            | Action::CostCenterAssigned
            | Action::CostCenterUnassigned => {
                return self.check_cost_center(action, intent).await;
            }
            Action::TokenCreated => {
                let name = intent.target_label.as_deref().unwrap_or_default();
                match crate::auth::tokens::find_live_by_name(db, name).await {
                    Ok(Some(_)) => applied(format!("A token named {name} exists.")),
                    Ok(None) => not_applied(format!("No live token is named {name}.")),
                    Err(e) => return Err(unreadable(&e)),
                }
            }
            Action::TokenRevoked => {
                let token_id: i64 = id.parse().map_err(|_| missing_token())?;
                match crate::auth::tokens::find(db, token_id).await {
                    Ok(Some(t)) if t.is_revoked() => applied("The token is revoked."),
                    Ok(Some(_)) => not_applied("The token is not revoked."),
                    Ok(None) => unknown("The token no longer exists."),
                    Err(e) => return Err(unreadable(&e)),
                }
            }
            Action::ScimUserProvisioned
            | Action::ScimUserChanged
            | Action::ScimUserDeprovisioned
            | Action::ScimUserDeleted => {
                let found = super::scim::store::user(db, id)
                    .await
                    .map_err(|e| unreadable(&e))?;
                match (action, found) {
                    (Action::ScimUserDeleted, None) => applied("SCIM no longer holds the person."),
                    (Action::ScimUserDeleted, Some(_)) => not_applied("SCIM still holds the person."),
                    (_, None) => not_applied("SCIM does not hold the person."),
                    (Action::ScimUserDeprovisioned, Some(u)) if !u.active => {
                        applied("The person is deactivated in SCIM.")
                    }
                    (Action::ScimUserDeprovisioned, Some(_)) => {
                        not_applied("The person is still active in SCIM.")
                    }
                    (_, Some(_)) => applied(
                        "SCIM holds the person; the identity provider's next request settles the details.",
                    ),
                }
            }
            Action::ScimGroupChanged | Action::ScimMappingChanged | Action::ScimDryRun => unknown(
                "SCIM's groups and mappings are as the SCIM page shows them; the identity provider's next push settles the groups.",
            ),
            other => unknown(format!(
                "Orgkeeper cannot check afterwards whether “{}” took effect.",
                other.label()
            )),
        })
    }

    /// Cost centers and their assignments (`service::cost_centers`), in this database.
    async fn check_cost_center(
        &mut self,
        action: Action,
        intent: &Record,
    ) -> Result<Verdict, Verdict> {
        let d = &intent.details;
        let db = &self.services.db;
        let unreadable = |e: sqlx::Error| unknown(format!("Orgkeeper's database: {e}"));
        let center: Option<i64> = intent.target_id.as_deref().and_then(|t| t.parse().ok());
        let name_of = |id: i64| async move {
            sqlx::query_scalar::<_, String>("SELECT name FROM cost_centers WHERE id = ?")
                .bind(id)
                .fetch_optional(db)
                .await
        };
        Ok(match action {
            Action::CostCenterCreated => {
                let name = text(d, &["name"])
                    .ok_or_else(|| unknown("The record does not name the center."))?;
                let found: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM cost_centers WHERE name = ?")
                        .bind(name)
                        .fetch_optional(db)
                        .await
                        .map_err(unreadable)?;
                match found {
                    Some(_) => applied(format!("The cost center {name} exists.")),
                    None => not_applied(format!("There is no cost center {name}.")),
                }
            }
            Action::CostCenterRenamed | Action::CostCenterDeleted => {
                let id = center.ok_or_else(|| unknown("The record does not name the center."))?;
                let now = name_of(id).await.map_err(unreadable)?;
                match (action, now, text(d, &["after", "name"])) {
                    (Action::CostCenterDeleted, None, _) => applied("The cost center is gone."),
                    (Action::CostCenterDeleted, Some(_), _) => {
                        not_applied("The cost center still exists.")
                    }
                    (_, Some(now), Some(after)) if now == after => {
                        applied(format!("The cost center is called {after}."))
                    }
                    (_, Some(now), _) => not_applied(format!("The cost center is called {now}.")),
                    (_, None, _) => unknown("The cost center no longer exists."),
                }
            }
            _ => {
                let (Some(kind), Some(target)) = (text(d, &["kind"]), text(d, &["target_id"]))
                else {
                    return Err(unknown("The record does not say what was assigned."));
                };
                let now: Option<i64> = sqlx::query_scalar(
                    "SELECT center_id FROM cost_center_rules WHERE kind = ? AND target_id = ?",
                )
                .bind(kind)
                .bind(target)
                .fetch_optional(db)
                .await
                .map_err(unreadable)?;
                match (action, now) {
                    (Action::CostCenterUnassigned, None) => applied("It is in no cost center now."),
                    (Action::CostCenterUnassigned, Some(_)) => {
                        not_applied("It is still in a cost center.")
                    }
                    (_, Some(c)) if Some(c) == center => applied("It is in that cost center."),
                    (_, _) => not_applied("It is not in that cost center."),
                }
            }
        })
    }
}
