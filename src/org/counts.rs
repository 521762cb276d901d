//! The overview's numbers, derived once per snapshot: members by role, workspaces active and
//! archived, keys by status, and the members who can reach no workspace. Pages (and the API)
//! show them; nothing here knows about links or labels.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::Snapshot;
use crate::anthropic::{ApiKeyStatus, Invite, InviteStatus, OrgRole};

pub struct Counts {
    pub members: usize,
    /// Members per organization role, most first (then by role).
    pub members_by_role: Vec<(OrgRole, usize)>,
    pub workspaces_active: usize,
    pub workspaces_archived: usize,
    /// Keys per status, in the API's order of statuses.
    pub keys_by_status: Vec<(ApiKeyStatus, usize)>,
    /// Members not listed in any active workspace who are not organization admins or billing
    /// members (those belong to every workspace through their role).
    pub without_workspace: Vec<String>,
}

impl Counts {
    /// Built once per snapshot, shared until the next change.
    pub fn of(snapshot: &Snapshot) -> std::sync::Arc<Counts> {
        snapshot.derived(Counts::build)
    }

    fn build(snapshot: &Snapshot) -> Counts {
        let mut by_role: BTreeMap<&str, (OrgRole, usize)> = BTreeMap::new();
        for user in snapshot.users.iter() {
            by_role
                .entry(user.role.as_str())
                .or_insert_with(|| (user.role.clone(), 0))
                .1 += 1;
        }
        let mut members_by_role: Vec<(OrgRole, usize)> = by_role.into_values().collect();
        members_by_role.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let archived = snapshot
            .workspaces
            .iter()
            .filter(|w| w.is_archived())
            .count();
        Counts {
            members: snapshot.users.len(),
            members_by_role,
            workspaces_active: snapshot.workspaces.len() - archived,
            workspaces_archived: archived,
            keys_by_status: ApiKeyStatus::KNOWN
                .iter()
                .map(|status| {
                    let n = snapshot.keys.iter().filter(|k| &k.status == status).count();
                    (status.clone(), n)
                })
                .collect(),
            without_workspace: without_workspace(snapshot),
        }
    }
}

fn without_workspace(snapshot: &Snapshot) -> Vec<String> {
    let mut placed: HashSet<&str> = HashSet::new();
    for workspace in snapshot.workspaces.iter().filter(|w| !w.is_archived()) {
        placed.extend(
            snapshot
                .members_in(&workspace.id)
                .iter()
                .map(|m| &*m.user_id),
        );
    }
    snapshot
        .users
        .iter()
        .filter(|u| !matches!(u.role, OrgRole::Admin | OrgRole::Billing))
        .filter(|u| !placed.contains(u.id.as_str()))
        .map(|u| u.id.clone())
        .collect()
}

/// The keys among `reported` (ids of keys reported as leaked) that still work: the leak was
/// recorded but the key could not be deactivated, or was reactivated since.
pub fn leaked_still_active(snapshot: &Snapshot, reported: &[String]) -> Vec<String> {
    let reported: HashSet<&str> = reported.iter().map(String::as_str).collect();
    snapshot
        .keys
        .iter()
        .filter(|k| k.status == ApiKeyStatus::Active && reported.contains(k.id.as_str()))
        .map(|k| k.id.clone())
        .collect()
}

/// Among (scope, spent this month, limit) triples, the ones whose limit is reached: Anthropic
/// refuses that scope's requests until the next month or a higher limit.
pub fn reached<T: Clone>(spends: &[(T, Decimal, Decimal)]) -> Vec<T> {
    spends
        .iter()
        .filter(|(_, spent, limit)| spent >= limit)
        .map(|(scope, _, _)| scope.clone())
        .collect()
}

/// Days before its expiry at which a pending invite is flagged (overview, invites list).
pub const INVITE_EXPIRING_DAYS: i64 = 3;

/// A pending invite that expires within `days` of `now` (an expired invite cannot be re-sent).
pub fn expiring_within(invite: &Invite, now: DateTime<Utc>, days: i64) -> bool {
    invite.status == InviteStatus::Pending
        && invite.expires_at > now
        && invite.expires_at <= now + Duration::days(days)
}
