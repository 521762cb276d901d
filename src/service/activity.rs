//! The Compliance API's Activity Feed: who made the changes Orgkeeper observes.
//!
//! Each sync reads the activities that arrived since the stored cursor (oldest first, a
//! bounded number of pages, each call with the usual deadline) *before* it writes its observed
//! records, and attaches the actor of the matching activity (same kind of change, same target,
//! in the sync's time window) to each record's details as `seen_in_feed`. The record is
//! written once, with its attribution, so the hash chain never needs an edit. An activity that
//! arrives after its change was recorded (the feed is asynchronous, about a minute) gets a
//! record of its own that names the earlier one ([`attribute_late`]).
//!
//! An admin key created before the Compliance API was enabled gets 403. That state is kept
//! in SQLite, shown once on the audit page, and the feed is asked again only hourly (a refused
//! call still spends the Compliance API's rate budget).

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sqlx::{Row, SqlitePool};

use super::Services;
use crate::anthropic::{Activity, ActivityOrder, ActivityParams, ApiError, PageParams};
use crate::audit::{Action, NewEntry};
use crate::org::Touched;

/// Activities asked for per page (the feed's default).
pub const PAGE_SIZE: u32 = 100;
/// Pages read per sync at most; a larger backlog is read over the next syncs.
const MAX_PAGES: usize = 20;
/// How often a refused feed is asked again.
pub const RECHECK: Duration = Duration::hours(1);
/// With no cursor yet, only this much history is read (the feed keeps six years).
const FIRST_READ: Duration = Duration::hours(1);
/// Clock difference tolerated between Anthropic's timestamps and ours.
const SLACK: Duration = Duration::minutes(10);
/// How far back an activity that arrived late is matched to a record without a name.
const LATE: Duration = Duration::days(1);
/// A late activity explains only a record written after its change (give or take this much
/// clock difference): an earlier record is about an earlier change of the same thing.
const LATE_SKEW: Duration = Duration::minutes(2);

/// The feed's stored state.
#[derive(Clone, Debug, Default)]
pub struct FeedState {
    pub cursor: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    /// Set while the feed is refused: since when, and why.
    pub unavailable: Option<(DateTime<Utc>, String)>,
}

/// What one sync read from the feed.
#[derive(Debug, Default)]
pub struct Read {
    pub activities: Vec<Activity>,
    /// The cursor to store once the observed records are written (`None`: keep the old one).
    cursor: Option<String>,
    /// The feed is refused to this admin key (asked again after [`RECHECK`]).
    pub refused: bool,
    /// The feed could not be read this time (it is read again from the same cursor).
    pub failed: Option<String>,
    /// More activities are waiting than one read takes.
    pub more: bool,
}

fn parse(at: Option<String>) -> Option<DateTime<Utc>> {
    at.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub async fn state(db: &SqlitePool) -> Result<FeedState, sqlx::Error> {
    let row = sqlx::query(
        "SELECT cursor, checked_at, unavailable_since, unavailable_reason FROM activity_feed WHERE id = 1",
    )
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(FeedState::default());
    };
    let since = parse(row.try_get("unavailable_since")?);
    let reason: Option<String> = row.try_get("unavailable_reason")?;
    Ok(FeedState {
        cursor: row.try_get("cursor")?,
        checked_at: parse(row.try_get("checked_at")?),
        unavailable: since.map(|s| (s, reason.unwrap_or_default())),
    })
}

async fn save(db: &SqlitePool, state: &FeedState) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO activity_feed (id, cursor, checked_at, unavailable_since, unavailable_reason) \
         VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, \
         checked_at = excluded.checked_at, unavailable_since = excluded.unavailable_since, \
         unavailable_reason = excluded.unavailable_reason",
    )
    .bind(&state.cursor)
    .bind(state.checked_at.map(crate::db::ts))
    .bind(state.unavailable.as_ref().map(|(s, _)| crate::db::ts(*s)))
    .bind(state.unavailable.as_ref().map(|(_, r)| r.clone()))
    .execute(db)
    .await?;
    Ok(())
}

fn refused(error: &ApiError) -> bool {
    error.status() == Some(403)
}

/// Reads what arrived since the cursor. Never fails the sync: a refusal is remembered, any
/// other failure is logged and the next sync tries again from the same cursor. The cursor to
/// store stops before `started`, when the sync began reading the organization: a change made
/// while it read may only be seen by the next one.
pub async fn read(services: &Services, started: DateTime<Utc>) -> Read {
    match read_inner(services, started).await {
        Ok(read) => read,
        Err(error) => {
            tracing::warn!(%error, "the activity feed's state could not be read or saved");
            Read {
                failed: Some(format!("Orgkeeper's database: {error}")),
                ..Read::default()
            }
        }
    }
}

/// Reads what arrived since the cursor, to re-read what it names afterwards: the cursor to
/// store is the last activity read.
pub async fn read_to_end(services: &Services) -> Read {
    read(services, DateTime::<Utc>::MAX_UTC).await
}

async fn read_inner(services: &Services, started: DateTime<Utc>) -> Result<Read, sqlx::Error> {
    let now = services.clock.now();
    let mut stored = state(&services.db).await?;
    if stored.unavailable.is_some() && stored.checked_at.is_some_and(|at| now - at < RECHECK) {
        return Ok(Read {
            refused: true,
            ..Read::default()
        });
    }
    let api = services.org.api();
    let mut after = stored.cursor.clone();
    let mut out = Read::default();
    for _ in 0..MAX_PAGES {
        let params = ActivityParams {
            page: PageParams {
                limit: Some(PAGE_SIZE),
                after_id: after.clone(),
                before_id: None,
            },
            order: Some(ActivityOrder::Asc),
            created_at_gte: stored.cursor.is_none().then(|| now - FIRST_READ),
            activity_types: Vec::new(),
        };
        match api.list_activities(&params).await {
            Ok(page) => {
                stored.unavailable = None;
                // The stored cursor stops before anything newer than the sync's start: a
                // change made while the organization was being read may only be seen by the
                // next sync, which then reads its activity again.
                for a in page.data {
                    if a.created_at < started {
                        out.cursor = Some(a.id.clone());
                    }
                    out.activities.push(a);
                }
                out.more = page.has_more;
                if !page.has_more {
                    break;
                }
                match page.last_id {
                    Some(last) if Some(&last) != after.as_ref() => after = Some(last),
                    _ => break,
                }
            }
            Err(error) if refused(&error) => {
                if stored.unavailable.is_none() {
                    tracing::info!(%error, "the Compliance API's activity feed is not available to this admin key");
                    stored.unavailable = Some((now, error.user_message()));
                }
                out.refused = true;
                break;
            }
            // The feed no longer knows the stored cursor (the admin key now belongs to
            // another organization, or the activity is gone): kept, every round would fail
            // the same way for good. Read the last hour instead, as on the first read; the
            // sweep finds what changed in the gap.
            Err(error)
                if error.status() == Some(400) && after.is_some() && after == stored.cursor =>
            {
                tracing::warn!(%error, "the activity feed refused Orgkeeper's place in it; reading it again from the last hour");
                stored.cursor = None;
                after = None;
            }
            Err(error) => {
                tracing::warn!(%error, "the activity feed could not be read; trying again at the next sync");
                out.failed = Some(error.user_message());
                break;
            }
        }
    }
    stored.checked_at = Some(now);
    save(&services.db, &stored).await?;
    Ok(out)
}

/// Stores the cursor of a read whose observed records are written.
pub async fn done(services: &Services, read: &Read) {
    let Some(cursor) = &read.cursor else { return };
    let result = async {
        let mut stored = state(&services.db).await?;
        stored.cursor = Some(cursor.clone());
        save(&services.db, &stored).await
    }
    .await;
    if let Err(error) = result {
        tracing::warn!(%error, "the activity feed's cursor could not be saved; it is read again next time");
    }
}

/// What to re-read to see the change an activity names (nothing for activities that change
/// nothing the model holds).
pub fn touches(a: &Activity) -> Vec<Touched> {
    let id = |name: &str| a.field(name).filter(|v| !v.is_empty()).map(str::to_owned);
    let one = |name: &str, scope: fn(String) -> Touched| id(name).map(scope).into_iter().collect();
    let membership = || match (id("workspace_id"), id("user_id")) {
        (Some(workspace), Some(user)) => vec![Touched::Membership { workspace, user }],
        _ => Vec::new(),
    };
    // Someone who left: their membership rows and personal keys go with them.
    let person_left = |user: Option<String>| match user {
        Some(user) => vec![Touched::User(user.clone()), Touched::KeysOfUser(user)],
        None => Vec::new(),
    };
    match a.kind.as_str() {
        "platform_api_key_created" | "api_key_created" | "platform_api_key_updated" => {
            one("api_key_id", Touched::Key)
        }
        // Also used when someone joins or leaves the organization.
        "claude_user_role_updated" => one("user_id", Touched::User),
        "org_user_deleted" => person_left(id("deleted_user_id")),
        "org_user_left" => person_left(a.actor.user_id.clone()),
        "org_user_invite_sent" => one("invited_email", Touched::InvitesFor),
        "org_user_invite_deleted" => one("invite_id", Touched::Invite),
        "org_user_invite_accepted" => {
            let mut out: Vec<Touched> = one("invite_id", Touched::Invite);
            out.extend(id("user_id").map(Touched::User));
            out
        }
        "platform_workspace_updated" => one("workspace_id", Touched::Workspace),
        // A new workspace comes with its limits and perhaps its creator as a member.
        "platform_workspace_created" => id("workspace_id")
            .map(|w| {
                vec![
                    Touched::Workspace(w.clone()),
                    Touched::MembersOfWorkspace(w.clone()),
                    Touched::RateLimitsOf(w),
                ]
            })
            .unwrap_or_default(),
        // Archiving a workspace archives its keys.
        "platform_workspace_archived" => id("workspace_id")
            .map(|w| vec![Touched::Workspace(w.clone()), Touched::KeysOfWorkspace(w)])
            .unwrap_or_default(),
        "platform_workspace_member_added"
        | "platform_workspace_member_updated"
        | "platform_workspace_member_removed" => membership(),
        "platform_spend_limit_created"
        | "platform_spend_limit_updated"
        | "platform_spend_limit_deleted"
        | "workspace_spend_limit_created"
        | "workspace_spend_limit_deleted" => vec![Touched::SpendLimits],
        "platform_workspace_rate_limit_updated" | "platform_workspace_rate_limit_deleted" => {
            one("workspace_id", Touched::RateLimitsOf)
        }
        _ => Vec::new(),
    }
}

/// The (action, key) pairs an activity can explain. Keys are target ids, except memberships
/// (`workspace/user`) and new invites (their email, which the feed names instead of an id).
fn explains(a: &Activity) -> Vec<(Action, String)> {
    use Action as A;
    let f = |name: &str| a.field(name).unwrap_or_default().to_owned();
    let membership = || format!("{}/{}", f("workspace_id"), f("user_id"));
    let key_updates = || {
        let updated: Vec<&str> = a.updated().collect();
        let mut out = Vec::new();
        if updated.is_empty() || updated.contains(&"name") {
            out.push(A::KeyRenamed);
        }
        if updated.is_empty() || updated.contains(&"status") {
            out.extend([A::KeyDeactivated, A::KeyReactivated, A::KeyArchived]);
        }
        out.into_iter().map(|act| (act, f("api_key_id"))).collect()
    };
    match a.kind.as_str() {
        "platform_api_key_created" | "api_key_created" => vec![(A::KeyCreated, f("api_key_id"))],
        "platform_api_key_updated" => key_updates(),
        // Also used when someone is added to or removed from the organization.
        "claude_user_role_updated" => [A::MemberRoleChanged, A::MemberJoined, A::MemberRemoved]
            .into_iter()
            .map(|act| (act, f("user_id")))
            .collect(),
        "org_user_deleted" => vec![(A::MemberRemoved, f("deleted_user_id"))],
        "org_user_left" => vec![(
            A::MemberRemoved,
            a.actor.user_id.clone().unwrap_or_default(),
        )],
        "org_user_invite_sent" => vec![(A::InviteCreated, f("invited_email").to_lowercase())],
        "org_user_invite_deleted" => vec![(A::InviteDeleted, f("invite_id"))],
        "org_user_invite_accepted" => vec![(A::InviteAccepted, f("invite_id"))],
        "platform_workspace_created" => vec![(A::WorkspaceCreated, f("workspace_id"))],
        "platform_workspace_updated" => vec![(A::WorkspaceUpdated, f("workspace_id"))],
        "platform_workspace_archived" => vec![(A::WorkspaceArchived, f("workspace_id"))],
        "platform_workspace_member_added" => vec![(A::WorkspaceMemberAdded, membership())],
        "platform_workspace_member_updated" => {
            vec![(A::WorkspaceMemberRoleChanged, membership())]
        }
        "platform_workspace_member_removed" => vec![(A::WorkspaceMemberRemoved, membership())],
        // Spend limits are recorded by scope: `organization` or the workspace id.
        "platform_spend_limit_created" | "platform_spend_limit_updated" => {
            vec![(A::SpendLimitSet, "organization".to_owned())]
        }
        "platform_spend_limit_deleted" => vec![(A::SpendLimitRemoved, "organization".to_owned())],
        "workspace_spend_limit_created" => vec![(A::SpendLimitSet, f("workspace_id"))],
        "workspace_spend_limit_deleted" => vec![(A::SpendLimitRemoved, f("workspace_id"))],
        "platform_workspace_rate_limit_updated" | "platform_workspace_rate_limit_deleted" => {
            vec![(A::WorkspaceRateLimitChanged, f("workspace_id"))]
        }
        _ => Vec::new(),
    }
}

/// The keys an observed record (its action code, target id and details) can be explained by.
fn keys_of(action: &str, id: &str, d: &Value) -> Vec<String> {
    let id = id.to_owned();
    match Action::from_code(action) {
        Some(
            Action::WorkspaceMemberAdded
            | Action::WorkspaceMemberRemoved
            | Action::WorkspaceMemberRoleChanged,
        ) => vec![format!(
            "{}/{}",
            d["workspace_id"].as_str().unwrap_or_default(),
            d["user_id"].as_str().unwrap_or_default()
        )],
        Some(Action::InviteCreated) => {
            vec![id, d["email"].as_str().unwrap_or_default().to_lowercase()]
        }
        _ => vec![id],
    }
}

fn explained_by(a: &[(Action, String)], action: Action, keys: &[String]) -> bool {
    a.iter()
        .any(|(act, key)| *act == action && !key.is_empty() && keys.contains(key))
}

/// What the record says about the activity.
pub fn seen_in_feed(a: &Activity) -> Value {
    json!({
        "actor": a.actor.describe(),
        "actor_type": a.actor.kind,
        "user_id": a.actor.user_id,
        "ip": a.actor.ip_address,
        "user_agent": a.actor.user_agent,
        "at": a.created_at,
        "activity_id": a.id,
        "activity_type": a.kind,
    })
}

/// Attaches to each observed record the newest unused activity that explains it and falls in
/// `[from, to]` (give or take [`SLACK`]). One activity explains one record at most. Says
/// which activities were used.
pub fn attribute(
    entries: &mut [NewEntry],
    activities: &[Activity],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<bool> {
    let candidates: Vec<(usize, Vec<(Action, String)>)> = activities
        .iter()
        .enumerate()
        .filter(|(_, a)| a.created_at >= from - SLACK && a.created_at <= to + SLACK)
        .map(|(i, a)| (i, explains(a)))
        .filter(|(_, e)| !e.is_empty())
        .collect();
    let mut used = vec![false; activities.len()];
    for entry in entries.iter_mut() {
        let Some(action) = Action::from_code(&entry.action) else {
            continue;
        };
        let id = entry.target.as_ref().map(|t| t.id.as_str()).unwrap_or("");
        let keys = keys_of(&entry.action, id, &entry.details);
        let found = candidates
            .iter()
            .filter(|(i, e)| !used[*i] && explained_by(e, action, &keys))
            .map(|(i, _)| *i)
            .max_by_key(|i| activities[*i].created_at);
        if let (Some(i), Value::Object(details)) = (found, &mut entry.details) {
            used[i] = true;
            details.insert("seen_in_feed".into(), seen_in_feed(&activities[i]));
        }
    }
    used
}

/// The feed is asynchronous: an activity can arrive after the sync that recorded its change
/// (without a name). The chain is never edited, so such an activity gets a record of its own,
/// `observed.attributed`, naming the earlier record (`details.record`) and who made the change.
/// It looks back at most [`LATE`]; each earlier record and each activity is attributed once,
/// also when the feed is read again.
pub async fn attribute_late(
    services: &Services,
    activities: &[Activity],
    used: &[bool],
) -> Result<Vec<NewEntry>, crate::audit::AuditError> {
    let late: Vec<(&Activity, Vec<(Action, String)>)> = activities
        .iter()
        .zip(used)
        .filter(|(_, used)| !**used)
        .map(|(a, _)| (a, explains(a)))
        .filter(|(_, e)| !e.is_empty())
        .collect();
    let Some(oldest) = late.iter().map(|(a, _)| a.created_at).min() else {
        return Ok(Vec::new());
    };
    // Wide enough to see every record that may already name one of these activities.
    let since = (oldest - SLACK).max(services.clock.now() - LATE);
    let records = services.audit.observed_since(since).await?;
    let activity_of = |r: &crate::audit::Record| {
        r.details["seen_in_feed"]["activity_id"]
            .as_str()
            .map(str::to_owned)
    };
    let mut seen: HashSet<String> = records.iter().filter_map(activity_of).collect();
    let mut attributed: HashSet<i64> = records
        .iter()
        .filter_map(|r| r.details["record"].as_i64())
        .collect();
    let mut out = Vec::new();
    for (a, explains) in late {
        if seen.contains(&a.id) {
            continue;
        }
        // The first unnamed record at or after the change that it explains.
        let found = records.iter().find(|r| {
            let Some(action) = Action::from_code(&r.action) else {
                return false;
            };
            r.time >= a.created_at - LATE_SKEW
                && !attributed.contains(&r.seq)
                && r.details.get("seen_in_feed").is_none()
                && action != Action::ObservedAttributed
                && explained_by(
                    &explains,
                    action,
                    &keys_of(&r.action, r.target_id.as_deref().unwrap_or(""), &r.details),
                )
        });
        let Some(record) = found else { continue };
        attributed.insert(record.seq);
        seen.insert(a.id.clone());
        out.push(super::sync::attribution_entry(record, seen_in_feed(a)));
    }
    Ok(out)
}

/// The audit page's notice while the feed is refused: once, with what to do.
pub async fn notice(db: &SqlitePool) -> Option<String> {
    match state(db).await {
        Ok(FeedState {
            unavailable: Some((since, reason)),
            ..
        }) => Some(format!(
            "Orgkeeper cannot read the Compliance API's Activity Feed (since {}), so observed \
             changes do not say who made them. To turn it on, enable the Compliance API in the \
             Console under Settings → Security, then create a new admin key and give it to \
             Orgkeeper: keys created before the Compliance API was enabled cannot read the \
             feed. Orgkeeper asks again every hour. ({reason})",
            crate::labels::moment_label(&since)
        )),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(%error, "the activity feed's state could not be read");
            None
        }
    }
}
