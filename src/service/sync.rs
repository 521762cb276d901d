//! The organization sync: read everything, take it into the model, and record every
//! difference Orgkeeper did not make as an observed change.
//!
//! Observed records have no local account as their actor (`outside Orgkeeper`, role
//! `observed`), use the same action codes as Orgkeeper's own changes (so one filter finds a
//! key archived either way), and are written all together before the model moves on: if the
//! audit log cannot take them, the model keeps its old state and the next sync records the
//! same differences again (fail closed, nothing lost). The first sync records one baseline.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{activity, observed_alerts, target, ServiceError, Services};
use crate::anthropic::{
    ApiKey, ApiKeyStatus, Invite, InviteStatus, User, Workspace, WorkspaceMember,
};
use crate::audit::{Action, Actor, NewEntry, Outcome, Source, Target};
use crate::org::{Changes, Diff, Fetched, Snapshot, Touched};

/// What one sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub baseline: bool,
    pub observed: usize,
    /// Addresses of the people who joined the organization since the last sync.
    pub joined: Vec<String>,
}

/// One sync round: read the organization, then the Activity Feed (who made what changed),
/// record the observed changes with their attribution, then send the alerts they call for.
pub async fn run(services: &Services) -> Result<SyncReport, SyncError> {
    // Never beside a round that follows the feed: both read it and attribute from it.
    let _alone = services.following.lock().await;
    let started = services.clock.now();
    // Each call has the configured deadline, like a page's; the client backs off on 429.
    let fetched = services.org.fetch(services.org.api()).await?;
    let feed = activity::read(services, started).await;
    observed_alerts::prepare(services).await;
    let report = take(services, fetched, started, &feed).await;
    crate::memory::release();
    let report = report?;
    // Only now: if the records could not be written, the same activities are read again.
    activity::done(services, &feed).await;
    observed_alerts::send(services).await;
    // Someone provisioned while invited gets their groups' workspaces once they join.
    if let Err(error) = super::scim::settle_joined(services, &report.joined).await {
        tracing::warn!(%error, "the workspaces of people who joined could not be provisioned");
    }
    Ok(report)
}

/// Takes what a sync read (starting at `started`) into the model, recording what changed
/// outside Orgkeeper with who did it, where the feed says so.
pub async fn take(
    services: &Services,
    fetched: Fetched,
    started: chrono::DateTime<chrono::Utc>,
    feed: &activity::Read,
) -> Result<SyncReport, SyncError> {
    // The observed changes happened since the previous sync started reading (or, for the
    // first one, recently).
    let since = services
        .org
        .snapshot()
        .synced_at
        .unwrap_or(started - activity::RECHECK);
    let now = services.clock.now();
    let org = &services.org;
    let counts = json!({
        "members": fetched.users.len(),
        "invites": fetched.invites.len(),
        "workspaces": fetched.workspaces.len(),
        "memberships": fetched.memberships.len(),
        "api_keys": fetched.keys.len(),
    });
    let organization = fetched.organization.clone();
    let mut report = SyncReport::default();
    let report_ref = &mut report;
    org.sync(fetched, started, |changes, baseline| async move {
        let entries = if baseline {
            vec![baseline_entry(&organization.name, counts)]
        } else {
            let (entries, observed, joined) =
                named_by_feed(services, &changes, &feed.activities, since, now).await?;
            report_ref.observed = observed;
            report_ref.joined = joined;
            entries
        };
        report_ref.baseline = baseline;
        if !entries.is_empty() {
            services.audit.append_all(entries).await?;
        }
        Ok::<_, SyncError>(changes)
    })
    .await?;
    Ok(report)
}

/// The records for what a read observed, each named by the feed's activity that explains it
/// (made between `since` and `now`), followed by late attributions: activities that explain
/// records written earlier without a name. Also says how many changes were observed (the
/// attributions are not changes) and the addresses of the people who joined.
pub(super) async fn named_by_feed(
    services: &Services,
    changes: &Changes,
    activities: &[crate::anthropic::Activity],
    since: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<NewEntry>, usize, Vec<String>), SyncError> {
    let mut entries = observed_entries(changes, &services.org.snapshot());
    let observed = entries.len();
    let joined = changes
        .users
        .iter()
        .filter(|d| d.before.is_none())
        .filter_map(|d| d.after.as_ref().map(|u| u.email.clone()))
        .collect();
    let used = activity::attribute(&mut entries, activities, since, now);
    entries.extend(activity::attribute_late(services, activities, &used).await?);
    Ok((entries, observed, joined))
}

/// Re-reads an irreversible action's target before its confirmation is shown (each call
/// within the client's deadline), so it shows the current state; what changed outside
/// Orgkeeper is recorded as observed. `Ok` with what changed since the model last read it;
/// `Err(note)` when that could not be done: the confirmation then shows the model as last
/// read, and says so with the note.
pub async fn check_current(services: &Services, touched: &[Touched]) -> Result<Changes, String> {
    let reason = match confirm_current(services, touched).await {
        Ok(changes) => return Ok(changes),
        Err(SyncError::Api(error)) => error.user_message(),
        Err(SyncError::Service(error)) => {
            tracing::warn!(%error, "a confirmation's re-read could not be recorded");
            "what changed could not be recorded in the audit log.".to_owned()
        }
    };
    let when = match services.org.snapshot().synced_at {
        Some(at) => format!(" (last read {})", crate::labels::moment_label(&at)),
        None => String::new(),
    };
    Err(format!(
        "Orgkeeper could not check the latest state with Anthropic, so this shows what it last read{when}. {reason}"
    ))
}

/// Re-reads the target of an irreversible action for its confirmation page, so it shows the
/// current state. What changed outside Orgkeeper is recorded as observed exactly as a sync
/// records it (same entries, same fail-closed rule), so the next sync neither hides nor
/// repeats it. The Activity Feed is read only by the sync, so these records name no person;
/// the next sync does, in an `observed.attributed` record ([`activity::attribute_late`]).
pub async fn confirm_current(
    services: &Services,
    touched: &[Touched],
) -> Result<Changes, SyncError> {
    services
        .org
        .reread_current(touched, |changes| async move {
            let entries = observed_entries(&changes, &services.org.snapshot());
            if !entries.is_empty() {
                services.audit.append_all(entries).await?;
            }
            Ok::<_, SyncError>(changes)
        })
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] crate::anthropic::ApiError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<crate::audit::AuditError> for SyncError {
    fn from(error: crate::audit::AuditError) -> Self {
        SyncError::Service(error.into())
    }
}

impl From<sqlx::Error> for SyncError {
    fn from(error: sqlx::Error) -> Self {
        SyncError::Service(error.into())
    }
}

fn entry(action: Action, target: Option<Target>, details: Value) -> NewEntry {
    NewEntry {
        target,
        details,
        ..NewEntry::new(Actor::observer(), Source::default(), action, Outcome::Ok)
    }
}

/// Names who made an earlier observed change, from an activity that reached the feed after
/// it was recorded: same target, the earlier record's seq and action in the details.
pub fn attribution_entry(record: &crate::audit::Record, seen_in_feed: Value) -> NewEntry {
    let target = record.target_id.clone().map(|id| {
        let t = Target::new(record.target_type.clone().unwrap_or_default(), id);
        match &record.target_label {
            Some(label) => t.with_label(label.clone()),
            None => t,
        }
    });
    entry(
        Action::ObservedAttributed,
        target,
        json!({
            "record": record.seq,
            "action": record.action,
            "seen_in_feed": seen_in_feed,
        }),
    )
}

fn baseline_entry(organization: &str, counts: Value) -> NewEntry {
    entry(
        Action::OrgBaseline,
        target(
            "organization",
            organization.to_owned(),
            Some(organization.to_owned()),
        ),
        json!({ "counts": counts }),
    )
}

/// One record per difference Orgkeeper did not make. `model` is the model before the changes
/// (for the names of workspaces a spend limit applies to).
pub fn observed_entries(changes: &Changes, model: &Snapshot) -> Vec<NewEntry> {
    fn observed<T>(d: &&Diff<T>) -> bool {
        d.observed
    }
    let mut out = Vec::new();
    let removed: HashSet<&str> = changes
        .users
        .iter()
        .filter(observed)
        .filter(|d| d.after.is_none())
        .filter_map(|d| d.before.as_ref().map(|u| u.id.as_str()))
        .collect();
    out.extend(changes.users.iter().filter(observed).filter_map(user));
    out.extend(changes.invites.iter().filter(observed).filter_map(invite));
    out.extend(
        changes
            .workspaces
            .iter()
            .filter(observed)
            .flat_map(workspace),
    );
    // A member removed from the organization leaves their workspaces with them: one record.
    out.extend(
        changes
            .memberships
            .iter()
            .filter(observed)
            .filter(|d| {
                !d.before
                    .as_ref()
                    .is_some_and(|m| removed.contains(&*m.user_id))
            })
            .filter_map(|d| membership(d, changes)),
    );
    out.extend(changes.keys.iter().filter(observed).flat_map(key));
    let workspace_name = |id: &str| {
        model
            .workspaces
            .iter()
            .find(|w| w.id == id)
            .map(|w| w.name.clone())
    };
    out.extend(
        changes
            .spend_limits
            .iter()
            .filter(observed)
            .filter_map(|d| super::limits::observed_spend_limit(d, workspace_name))
            .map(|(action, target, details)| entry(action, target, details)),
    );
    out.extend(
        changes
            .rate_limit_overrides
            .iter()
            .filter(|c| c.observed)
            .map(|c| {
                let label = workspace_name(&c.workspace).unwrap_or_else(|| c.workspace.clone());
                entry(
                    Action::WorkspaceRateLimitChanged,
                    target("workspace", c.workspace.clone(), Some(label)),
                    super::limits::rate_limit_details(
                        c.rate_limit_id.as_str(),
                        &c.group,
                        &c.kind,
                        c.before,
                        c.after,
                    ),
                )
            }),
    );
    out
}

fn member_target(u: &User) -> Option<Target> {
    target("member", u.id.clone(), Some(u.email.clone()))
}

fn user(d: &Diff<User>) -> Option<NewEntry> {
    match (&d.before, &d.after) {
        (None, Some(u)) => Some(entry(
            Action::MemberJoined,
            member_target(u),
            json!({ "email": u.email, "name": u.name, "after": { "role": u.role.as_str() } }),
        )),
        (Some(u), None) => Some(entry(
            Action::MemberRemoved,
            member_target(u),
            json!({ "email": u.email, "name": u.name, "before": { "role": u.role.as_str() } }),
        )),
        (Some(b), Some(a)) if b.role != a.role => Some(entry(
            Action::MemberRoleChanged,
            member_target(a),
            json!({ "email": a.email, "before": b.role.as_str(), "after": a.role.as_str() }),
        )),
        _ => None,
    }
}

fn invite(d: &Diff<Invite>) -> Option<NewEntry> {
    let t = |i: &Invite| target("invite", i.id.clone(), Some(i.email.clone()));
    let details = |i: &Invite| json!({ "email": i.email, "role": i.role.as_str(), "status": i.status.as_str() });
    match (&d.before, &d.after) {
        (None, Some(i)) => Some(entry(Action::InviteCreated, t(i), details(i))),
        // Already recorded as deleted when its status said so (a model stored before re-reads
        // dropped deleted invites can still hold one).
        (Some(i), None) if i.status == InviteStatus::Deleted => None,
        (Some(i), None) => Some(entry(Action::InviteDeleted, t(i), details(i))),
        (Some(b), Some(a)) if b.status != a.status => {
            let action = match a.status {
                InviteStatus::Accepted => Action::InviteAccepted,
                InviteStatus::Expired => Action::InviteExpired,
                InviteStatus::Deleted => Action::InviteDeleted,
                _ => return None,
            };
            Some(entry(action, t(a), details(a)))
        }
        _ => None,
    }
}

fn workspace(d: &Diff<Workspace>) -> Vec<NewEntry> {
    let t = |w: &Workspace| target("workspace", w.id.clone(), Some(w.name.clone()));
    match (&d.before, &d.after) {
        (None, Some(w)) => vec![entry(
            Action::WorkspaceCreated,
            t(w),
            json!({ "after": { "name": w.name, "display_color": w.display_color } }),
        )],
        (Some(b), Some(a)) => {
            let mut out = Vec::new();
            if b.name != a.name || b.display_color != a.display_color {
                out.push(entry(
                    Action::WorkspaceUpdated,
                    t(a),
                    json!({
                        "before": { "name": b.name, "display_color": b.display_color },
                        "after": { "name": a.name, "display_color": a.display_color },
                    }),
                ));
            }
            if !b.is_archived() && a.is_archived() {
                out.push(entry(
                    Action::WorkspaceArchived,
                    t(a),
                    json!({ "before": { "archived": false }, "after": { "archived": true } }),
                ));
            }
            out
        }
        _ => Vec::new(),
    }
}

fn membership(d: &Diff<WorkspaceMember>, changes: &Changes) -> Option<NewEntry> {
    let m = d.after.as_ref().or(d.before.as_ref())?;
    let label = changes
        .users
        .iter()
        .filter_map(|u| u.after.as_ref().or(u.before.as_ref()))
        .find(|u| *u.id == *m.user_id)
        .map(|u| u.email.clone());
    let t = target(
        "member",
        m.user_id.to_string(),
        label.or(Some(m.user_id.to_string())),
    );
    let role = |m: &Option<WorkspaceMember>| {
        m.as_ref()
            .map(|m| json!({ "workspace_role": m.workspace_role.as_str() }))
            .unwrap_or(Value::Null)
    };
    let details = json!({
        "workspace_id": m.workspace_id,
        "user_id": m.user_id,
        "before": role(&d.before),
        "after": role(&d.after),
    });
    let action = match (&d.before, &d.after) {
        (None, Some(_)) => Action::WorkspaceMemberAdded,
        (Some(_), None) => Action::WorkspaceMemberRemoved,
        (Some(b), Some(a)) if b.workspace_role != a.workspace_role => {
            Action::WorkspaceMemberRoleChanged
        }
        _ => return None,
    };
    Some(entry(action, t, details))
}

fn key(d: &Diff<ApiKey>) -> Vec<NewEntry> {
    let t = |k: &ApiKey| target("api_key", k.id.clone(), Some(k.name.clone()));
    match (&d.before, &d.after) {
        (None, Some(k)) => vec![entry(
            Action::KeyCreated,
            t(k),
            json!({
                "name": k.name,
                "workspace_id": k.workspace_id(),
                "created_by": k.created_by.as_ref().map(|c| c.id.clone()),
                "expires_at": k.expires_at,
                "after": { "status": k.status.as_str() },
            }),
        )],
        (Some(b), Some(a)) => {
            let mut out = Vec::new();
            if b.name != a.name {
                out.push(entry(
                    Action::KeyRenamed,
                    t(a),
                    json!({ "before": { "name": b.name }, "after": { "name": a.name } }),
                ));
            }
            if b.status != a.status {
                let action = match a.status {
                    ApiKeyStatus::Active => Action::KeyReactivated,
                    ApiKeyStatus::Archived => Action::KeyArchived,
                    ApiKeyStatus::Expired => Action::KeyExpired,
                    _ => Action::KeyDeactivated,
                };
                out.push(entry(
                    action,
                    t(a),
                    json!({
                        "name": a.name,
                        "before": { "status": b.status.as_str() },
                        "after": { "status": a.status.as_str() },
                    }),
                ));
            }
            out
        }
        _ => Vec::new(),
    }
}
