//! What the model holds, generically: each kind of object, how it is named, what a change
//! touched, and how two lists of it differ.

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::anthropic::{ApiKey, Invite, SpendLimit, User, Workspace, WorkspaceMember};

/// What a change made through Orgkeeper touched. The model re-reads exactly that from the API
/// afterwards, and a sync that overlaps the change does not mistake it for an outside one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Touched {
    Organization,
    User(String),
    Invite(String),
    Workspace(String),
    Key(String),
    Membership {
        workspace: String,
        user: String,
    },
    /// Every membership of one workspace.
    MembersOfWorkspace(String),
    /// Every membership of one person (an organization role can change workspace roles).
    MembershipsOfUser(String),
    /// Every key of one workspace (archiving a workspace archives its keys).
    KeysOfWorkspace(String),
    /// Every key a person created or acts as (removing them archives their personal keys).
    KeysOfUser(String),
    /// The organization's spend limits (one list: setting one can replace another).
    SpendLimits,
    /// One workspace's rate limits.
    RateLimitsOf(String),
    /// The invites sent to one address (the Activity Feed names a new invite by its address).
    InvitesFor(String),
    /// The organization's own rate limits.
    OrgRateLimits,
    // Whole lists, for the sweep that re-reads the organization slice by slice.
    AllUsers,
    AllInvites,
    /// Every workspace, archived ones and the default workspace included.
    AllWorkspaces,
    AllKeys,
}

/// One kind of object in the model.
pub trait Entity: Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The `kind` column of `org_objects`.
    const KIND: &'static str;
    /// Unique within the kind.
    fn key(&self) -> String;
    /// Whether a change that touched `t` may have changed this object.
    fn touched_by(&self, t: &Touched) -> bool;
}

impl Entity for User {
    const KIND: &'static str = "user";
    fn key(&self) -> String {
        self.id.clone()
    }
    fn touched_by(&self, t: &Touched) -> bool {
        match t {
            Touched::User(id) => *id == self.id,
            Touched::AllUsers => true,
            _ => false,
        }
    }
}

impl Entity for Invite {
    const KIND: &'static str = "invite";
    fn key(&self) -> String {
        self.id.clone()
    }
    fn touched_by(&self, t: &Touched) -> bool {
        match t {
            Touched::Invite(id) => *id == self.id,
            Touched::InvitesFor(email) => self.email.eq_ignore_ascii_case(email),
            Touched::AllInvites => true,
            _ => false,
        }
    }
}

impl Entity for Workspace {
    const KIND: &'static str = "workspace";
    fn key(&self) -> String {
        self.id.clone()
    }
    fn touched_by(&self, t: &Touched) -> bool {
        match t {
            Touched::Workspace(id) => *id == self.id,
            Touched::AllWorkspaces => true,
            _ => false,
        }
    }
}

impl Entity for WorkspaceMember {
    const KIND: &'static str = "membership";
    fn key(&self) -> String {
        format!("{}/{}", self.workspace_id, self.user_id)
    }
    fn touched_by(&self, t: &Touched) -> bool {
        match t {
            Touched::Membership { workspace, user } => {
                **workspace == *self.workspace_id && **user == *self.user_id
            }
            Touched::MembersOfWorkspace(workspace) => **workspace == *self.workspace_id,
            Touched::MembershipsOfUser(user) => **user == *self.user_id,
            _ => false,
        }
    }
}

impl Entity for ApiKey {
    const KIND: &'static str = "key";
    fn key(&self) -> String {
        self.id.clone()
    }
    fn touched_by(&self, t: &Touched) -> bool {
        match t {
            Touched::Key(id) => *id == self.id,
            Touched::AllKeys => true,
            Touched::KeysOfWorkspace(workspace) => self.workspace_id() == Some(workspace.as_str()),
            Touched::KeysOfUser(user) => {
                self.created_by.as_ref().is_some_and(|c| *c.id == **user)
                    || self.principal_user_id() == Some(user.as_str())
            }
            _ => false,
        }
    }
}

impl Entity for SpendLimit {
    const KIND: &'static str = "spend_limit";
    fn key(&self) -> String {
        self.id.clone()
    }
    fn touched_by(&self, t: &Touched) -> bool {
        matches!(t, Touched::SpendLimits)
    }
}

/// One object before and after: added (`before` none), removed (`after` none) or changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Diff<T> {
    pub before: Option<T>,
    pub after: Option<T>,
    /// Seen by a sync and not made through Orgkeeper: the audit log records it as observed.
    pub observed: bool,
}

/// How a sync treats the objects a recent change of Orgkeeper's own touched.
pub struct Marks<'a> {
    /// Touched after the sync started reading: the API's answer may predate the change, so
    /// the model's own (written-through) version stays.
    pub keep: &'a [Touched],
    /// Touched before the sync started: its answer is current; take it, but it is Orgkeeper's
    /// own change, not an outside one.
    pub own: &'a [Touched],
}

/// A first complete read's list, into an empty model: what `merge` keeps of it, without its
/// differences (every object would be one). What was re-read since the read began is left
/// for the next read, as `merge` leaves it.
pub fn baseline<T: Entity>(fetched: Vec<T>, keep: &[Touched]) -> Vec<T> {
    fetched
        .into_iter()
        .filter(|item| !keep.iter().any(|t| item.touched_by(t)))
        .collect()
}

/// The merged list and its differences from `current`, for a complete fresh `fetched` list.
pub fn merge<T: Entity>(
    current: &[T],
    fetched: Vec<T>,
    marks: &Marks<'_>,
) -> (Vec<T>, Vec<Diff<T>>) {
    let touched = |item: &T, list: &[Touched]| list.iter().any(|t| item.touched_by(t));
    let mut old: HashMap<String, &T> = current.iter().map(|item| (item.key(), item)).collect();
    let mut merged = Vec::with_capacity(fetched.len());
    let mut diffs = Vec::new();
    for item in fetched {
        let before = old.remove(&item.key());
        if let Some(before) = before {
            if touched(before, marks.keep) || touched(&item, marks.keep) {
                merged.push(before.clone());
                continue;
            }
            if *before != item {
                let observed = !(touched(before, marks.own) || touched(&item, marks.own));
                diffs.push(Diff {
                    before: Some(before.clone()),
                    after: Some(item.clone()),
                    observed,
                });
            }
        } else {
            if touched(&item, marks.keep) {
                continue;
            }
            diffs.push(Diff {
                before: None,
                after: Some(item.clone()),
                observed: !touched(&item, marks.own),
            });
        }
        merged.push(item);
    }
    // Whatever is left was not listed any more.
    let mut gone: Vec<&T> = old.into_values().collect();
    gone.sort_by_key(|item| item.key());
    for before in gone {
        if touched(before, marks.keep) {
            merged.push(before.clone());
            continue;
        }
        diffs.push(Diff {
            before: Some(before.clone()),
            after: None,
            observed: !touched(before, marks.own),
        });
    }
    (merged, diffs)
}

/// Replaces the objects `scope` covers by `fresh` (a targeted re-read; the caller decides
/// which differences are observed). Objects `keep` touches were re-read or changed since this
/// read began: the model's newer version stays.
pub fn replace<T: Entity>(
    current: &[T],
    scope: &Touched,
    fresh: Vec<T>,
    keep: &[Touched],
) -> (Vec<T>, Vec<Diff<T>>) {
    let kept = |item: &T| keep.iter().any(|t| item.touched_by(t));
    let mut fresh_by_key: HashMap<String, T> =
        fresh.into_iter().map(|item| (item.key(), item)).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(current.len() + fresh_by_key.len());
    let mut diffs = Vec::new();
    for item in current {
        let key = item.key();
        seen.insert(key.clone());
        match fresh_by_key.remove(&key) {
            Some(new) if kept(item) || kept(&new) => out.push(item.clone()),
            Some(new) => {
                if new != *item {
                    diffs.push(Diff {
                        before: Some(item.clone()),
                        after: Some(new.clone()),
                        observed: false,
                    });
                }
                out.push(new);
            }
            None if item.touched_by(scope) && !kept(item) => diffs.push(Diff {
                before: Some(item.clone()),
                after: None,
                observed: false,
            }),
            None => out.push(item.clone()),
        }
    }
    let mut added: Vec<T> = fresh_by_key.into_values().filter(|n| !kept(n)).collect();
    added.sort_by_key(|item| item.key());
    for new in added {
        diffs.push(Diff {
            before: None,
            after: Some(new.clone()),
            observed: false,
        });
        out.push(new);
    }
    (out, diffs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::OrgRole;

    fn user(id: &str, role: OrgRole) -> User {
        User {
            id: id.into(),
            object_type: "user".into(),
            email: format!("{id}@example.com"),
            name: id.into(),
            role,
            added_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_sync_sees_additions_removals_and_changes_and_keeps_what_a_recent_change_touched() {
        let current = vec![
            user("a", OrgRole::User),
            user("b", OrgRole::User),
            user("c", OrgRole::User),
            user("d", OrgRole::User),
        ];
        let fetched = vec![
            user("a", OrgRole::Admin),     // changed outside
            user("b", OrgRole::Developer), // changed by us after the sync started: kept as is
            user("c", OrgRole::Admin),     // changed by us before: taken, not observed
            user("e", OrgRole::User),      // joined
        ]; // d left
        let keep = [Touched::User("b".into())];
        let own = [Touched::User("c".into())];
        let marks = Marks {
            keep: &keep,
            own: &own,
        };
        let (merged, diffs) = merge(&current, fetched, &marks);
        let roles: Vec<_> = merged
            .iter()
            .map(|u| (u.id.as_str(), u.role.as_str()))
            .collect();
        assert_eq!(
            roles,
            [("a", "admin"), ("b", "user"), ("c", "admin"), ("e", "user")]
        );
        let summary: Vec<_> = diffs
            .iter()
            .map(|d| {
                let id = d.after.as_ref().or(d.before.as_ref()).unwrap().id.clone();
                (id, d.before.is_some(), d.after.is_some(), d.observed)
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("a".to_string(), true, true, true),
                ("c".to_string(), true, true, false),
                ("e".to_string(), false, true, true),
                ("d".to_string(), true, false, true),
            ]
        );
    }

    #[test]
    fn a_targeted_reread_replaces_only_what_it_covers() {
        let current = vec![user("a", OrgRole::User), user("b", OrgRole::User)];
        let (out, diffs) = replace(&current, &Touched::User("a".into()), Vec::new(), &[]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "b");
        assert_eq!(diffs.len(), 1);
        assert!(diffs[0].after.is_none() && !diffs[0].observed);
    }
}
