//! The key inventory derived from the model, once per snapshot and for every caller (the keys
//! pages, the overview, the offboarding plan, the API): the names that describe a key, its
//! hygiene flags with their thresholds, and every key newest first with its flags.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::{Org, Snapshot};
use crate::anthropic::{ApiError, ApiKey, ApiKeyScope, ApiKeyStatus, KeyKind, User};

/// A key that expires within this many days is flagged.
pub const EXPIRING_SOON_DAYS: i64 = 14;
/// A key without use for this many days is flagged (when the usage store knows).
pub const UNUSED_DAYS: i64 = 30;

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

/// A key's flags as a set of bits: the key index keeps one per key (200,000 on `xlarge`),
/// where a `Vec` of them was 24 bytes and an allocation each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlagSet(u8);

impl FlagSet {
    pub fn of(flags: &[Flag]) -> FlagSet {
        FlagSet(flags.iter().fold(0, |bits, f| bits | 1 << *f as u8))
    }

    /// The flags in [`Flag::ALL`]'s order.
    pub fn as_slice(self) -> &'static [Flag] {
        static EVERY_SET: std::sync::OnceLock<Vec<Vec<Flag>>> = std::sync::OnceLock::new();
        let sets = EVERY_SET.get_or_init(|| {
            (0..1u8 << Flag::ALL.len())
                .map(|bits| {
                    let set = FlagSet(bits);
                    Flag::ALL.into_iter().filter(|f| set.contains(*f)).collect()
                })
                .collect()
        });
        &sets[usize::from(self.0)]
    }

    pub fn contains(self, flag: Flag) -> bool {
        self.0 & 1 << flag as u8 != 0
    }
}

impl AsRef<[Flag]> for FlagSet {
    fn as_ref(&self) -> &[Flag] {
        self.as_slice()
    }
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

impl Org {
    /// What the hygiene flags are computed from now: the model's sets, derived once per
    /// snapshot, and each key's last day of use from the usage store, read once per snapshot.
    pub async fn hygiene(&self, rotation_days: u32) -> Hygiene {
        let snapshot = self.snapshot();
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
            None => match crate::usage_store::key_last_used(&self.db).await {
                Ok(map) => snapshot.keep(LastUsed(Arc::new(map))).0.clone(),
                Err(error) => {
                    tracing::warn!(%error, "key usage could not be read; no key is flagged unused");
                    Arc::default()
                }
            },
        };
        Hygiene {
            now: self.clock.now(),
            rotation_days,
            members: sets.members.clone(),
            archived_workspaces: sets.archived_workspaces.clone(),
            last_used,
        }
    }
}

impl Hygiene {
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
            let is_user = creator.kind.is_empty() || &*creator.kind == "user";
            // A personal key made for someone else acts as them: its creator leaving is moot.
            let acts_as_other =
                matches!(key.kind(), KeyKind::Personal { user_id } if user_id != &*creator.id);
            if is_user && !acts_as_other && !members.contains(&*creator.id) {
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

/// How many keys carry each flag, given each key's flags.
pub fn count_flags<F: AsRef<[Flag]>>(per_key: impl IntoIterator<Item = F>) -> Vec<(Flag, usize)> {
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

/// Names the page needs to describe keys: workspaces and members.
pub struct Names {
    pub workspaces: HashMap<String, String>,
    pub users: HashMap<String, String>,
    /// People who left, by id: keys they made still say who they were.
    pub former: HashMap<String, String>,
    /// Lowercased emails of members and former members, for searching by person.
    emails: HashMap<String, String>,
    pub users_known: bool,
}

impl Names {
    /// Built once per model snapshot and shared by every page until the next change.
    pub fn of(snapshot: &Snapshot) -> Arc<Names> {
        snapshot.derived(Names::build)
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
    pub fn people(&self) -> impl Iterator<Item = (&String, &String, &str)> {
        self.users
            .iter()
            .chain(self.former.iter())
            .map(|(id, label)| {
                let email = self.emails.get(id).map(String::as_str).unwrap_or("");
                (id, label, email)
            })
    }

    pub fn workspace(&self, key: &ApiKey) -> String {
        match (&key.scope, key.workspace_id()) {
            (Some(ApiKeyScope::Organization), _) => "Organization".into(),
            (_, Some(id)) => self
                .workspaces
                .get(id)
                .cloned()
                .unwrap_or_else(|| id.to_owned()),
            (_, None) => "Default Workspace".into(),
        }
    }

    /// Whose a key is, in plain words ("Personal key of Ada Lovelace, all workspaces").
    pub fn whose(&self, key: &ApiKey) -> String {
        let reach = if key.is_organization_scoped() {
            ", all their workspaces"
        } else {
            ""
        };
        match key.kind() {
            KeyKind::Personal { user_id } => {
                let name = match (self.users.get(user_id), self.former.get(user_id)) {
                    (Some(name), _) => name.clone(),
                    (None, Some(name)) => format!("{name} (former member)"),
                    (None, None) if self.users_known => crate::labels::FORMER_MEMBER.to_owned(),
                    (None, None) => user_id.to_string(),
                };
                format!("Personal key of {name}{reach}")
            }
            KeyKind::ServiceAccount { .. } => {
                format!("Key of {}{reach}", crate::labels::SERVICE_ACCOUNT)
            }
            KeyKind::Workspace => "Workspace key (nobody's)".into(),
            KeyKind::Unknown => "Unknown owner".into(),
        }
    }
}

/// Every key newest first with its flags, the flag counts and the workspace choices: derived
/// once per snapshot, so a page costs a pass over precomputed rows instead of re-deriving the
/// organization.
pub struct KeyIndex {
    /// Positions in `Snapshot::keys`, newest first, with each key's flags.
    pub keys: Vec<(u32, FlagSet)>,
    /// How many keys carry each flag (every flag listed, zeros included).
    pub counts: Vec<(Flag, usize)>,
    /// (filter value, label) of every place a key belongs to, by label.
    pub workspaces: Vec<(String, String)>,
}

impl KeyIndex {
    /// Built once per snapshot (with `hygiene` of that snapshot), shared until the next change.
    pub(super) fn of(snapshot: &Snapshot, hygiene: &Hygiene) -> Arc<KeyIndex> {
        snapshot.derived(|s| KeyIndex::build(s, hygiene))
    }

    fn build(snapshot: &Snapshot, hygiene: &Hygiene) -> KeyIndex {
        let names = Names::of(snapshot);
        let mut sorted: Vec<u32> = (0..snapshot.keys.len() as u32).collect();
        sorted.sort_by_key(|&at| std::cmp::Reverse(snapshot.keys[at as usize].created_at));
        let keys: Vec<(u32, FlagSet)> = sorted
            .into_iter()
            .map(|at| (at, FlagSet::of(&hygiene.flags(&snapshot.keys[at as usize]))))
            .collect();
        let counts = count_flags(keys.iter().map(|(_, flags)| flags));
        let workspaces = workspace_choices(snapshot.keys.iter(), &names);
        KeyIndex {
            keys,
            counts,
            workspaces,
        }
    }
}

impl Org {
    /// The model and its key index (one snapshot for both: the positions are into its keys).
    pub async fn key_index(
        &self,
        rotation_days: u32,
    ) -> Result<(Arc<Snapshot>, Arc<KeyIndex>), ApiError> {
        let snapshot = self.synced()?;
        if let Some(index) = snapshot.cached::<KeyIndex>() {
            return Ok((snapshot, index));
        }
        let hygiene = self.hygiene(rotation_days).await;
        let index = KeyIndex::of(&snapshot, &hygiene);
        Ok((snapshot, index))
    }
}

/// Where these keys belong, as filter choices sorted by label.
pub fn workspace_choices<'a>(
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
pub fn creators_named(names: &Names, text: &str) -> HashSet<String> {
    let text = text.trim().to_lowercase();
    names
        .people()
        .filter(|(id, label, email)| {
            id.as_str() == text || label.to_lowercase().contains(&text) || email.contains(&text)
        })
        .map(|(id, _, _)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::ApiKeyCreatedBy;

    #[test]
    fn a_flag_set_gives_back_the_flags_it_was_made_of_in_a_fixed_order() {
        assert_eq!(FlagSet::of(&[]).as_slice(), &[] as &[Flag]);
        let set = FlagSet::of(&[Flag::ArchivedWorkspace, Flag::ExpiringSoon, Flag::NoExpiry]);
        assert_eq!(
            set.as_slice(),
            [Flag::NoExpiry, Flag::ExpiringSoon, Flag::ArchivedWorkspace]
        );
        assert!(set.contains(Flag::ExpiringSoon) && !set.contains(Flag::Unused));
        assert_eq!(FlagSet::of(&Flag::ALL).as_slice(), Flag::ALL);
    }

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
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
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
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
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
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let h = hygiene(now);
        let mut k = key(ApiKeyStatus::Active, 1, now);
        k.expires_at = Some(now + Duration::days(3));
        assert!(h.flags(&k).contains(&Flag::ExpiringSoon));
        k.expires_at = Some(now + Duration::days(30));
        assert!(!h.flags(&k).contains(&Flag::ExpiringSoon));
        assert!(!h.flags(&k).contains(&Flag::NoExpiry));
    }
}
