//! Names the reports show (usage, cost, budgets): workspaces and keys by id, and the default
//! workspace, which the reports call null and the store keeps as ''. Derived once per
//! snapshot.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{KeyLookup, Snapshot};
use crate::anthropic::ApiError;
use crate::usage_store::{Dim, DEFAULT_WORKSPACE};

/// How a report's usage without an API key is labelled.
pub const NO_KEY: &str = "Console / Workbench (no API key)";

/// Workspace and key names, and the default workspace's real id (reports call it null).
pub struct ReportNames {
    pub workspaces: HashMap<String, String>,
    keys: Arc<KeyLookup>,
    default_ws: Option<String>,
    /// Set when names could not be read: ids are shown instead.
    pub error: Option<String>,
}

impl ReportNames {
    /// Built once per model snapshot and shared by every page until the next change.
    pub fn of(snapshot: &Snapshot) -> Arc<ReportNames> {
        snapshot.derived(ReportNames::build)
    }

    fn build(snapshot: &Snapshot) -> ReportNames {
        if snapshot.synced_at.is_none() {
            return ReportNames {
                workspaces: HashMap::new(),
                keys: Arc::default(),
                default_ws: None,
                error: Some(ApiError::not_synced(None).user_message()),
            };
        }
        ReportNames {
            workspaces: snapshot
                .workspaces
                .iter()
                .map(|w| (w.id.clone(), w.name.clone()))
                .collect(),
            keys: snapshot.key_lookup(),
            default_ws: snapshot.default_workspace_id.clone(),
            error: None,
        }
    }

    /// The id as the store keeps it ('' for the default workspace).
    pub fn stored_ws(&self, real: &str) -> String {
        if self.default_ws.as_deref() == Some(real) {
            String::new()
        } else {
            real.to_owned()
        }
    }

    /// The real id, for API filters.
    pub fn real_ws(&self, stored: &str) -> Option<String> {
        if stored.is_empty() {
            self.default_ws.clone()
        } else {
            Some(stored.to_owned())
        }
    }

    pub fn workspace(&self, stored: &str) -> String {
        if stored.is_empty() {
            return DEFAULT_WORKSPACE.to_owned();
        }
        self.workspaces
            .get(stored)
            .cloned()
            .unwrap_or_else(|| stored.to_owned())
    }

    pub fn label(&self, dim: Option<Dim>, value: &str) -> String {
        match dim {
            None => "All usage".to_owned(),
            Some(Dim::Workspace) => self.workspace(value),
            Some(Dim::ApiKey) if value.is_empty() => NO_KEY.to_owned(),
            Some(Dim::ApiKey) => self
                .keys
                .get(value)
                .map_or_else(|| value.to_owned(), |k| k.name.clone()),
            Some(_) if value.is_empty() => "(not reported)".to_owned(),
            Some(Dim::Model) => crate::labels::model(value),
            Some(_) => value.to_owned(),
        }
    }

    /// Stored workspace id of a key ('' = default workspace), if known.
    pub fn key_workspace(&self, key: &str) -> Option<String> {
        self.keys.get(key).map(|k| {
            k.workspace_id()
                .map_or(String::new(), |w| self.stored_ws(w))
        })
    }
}

/// How the organization model names people, keys and service accounts: built once per
/// snapshot and shared by every page until the model changes.
pub struct Directory {
    /// Members and former members: (name, email, still a member).
    people: HashMap<String, (String, String, bool)>,
    keys: Arc<KeyLookup>,
    /// Each service account's key names.
    service_accounts: HashMap<String, Vec<String>>,
    workspaces: HashMap<String, String>,
}

impl Directory {
    pub fn of(snapshot: &Snapshot) -> Arc<Directory> {
        snapshot.derived(Directory::build)
    }

    fn build(snapshot: &Snapshot) -> Directory {
        let mut people: HashMap<String, (String, String, bool)> = snapshot
            .former
            .iter()
            .map(|(id, f)| {
                (
                    id.clone(),
                    (f.user.name.clone(), f.user.email.clone(), false),
                )
            })
            .collect();
        for u in snapshot.users.iter() {
            people.insert(u.id.clone(), (u.name.clone(), u.email.clone(), true));
        }
        let mut service_accounts: HashMap<String, Vec<String>> = HashMap::new();
        for k in snapshot.keys.iter() {
            if let crate::anthropic::KeyKind::ServiceAccount { service_account_id } = k.kind() {
                service_accounts
                    .entry(service_account_id.to_owned())
                    .or_default()
                    .push(k.name.clone());
            }
        }
        for names in service_accounts.values_mut() {
            names.sort();
        }
        Directory {
            people,
            keys: snapshot.key_lookup(),
            service_accounts,
            workspaces: snapshot
                .workspaces
                .iter()
                .map(|w| (w.id.clone(), w.name.clone()))
                .collect(),
        }
    }

    pub fn key(&self, id: &str) -> String {
        if id.is_empty() {
            return "No API key (Console)".into();
        }
        self.keys
            .get(id)
            .map_or_else(|| id.to_owned(), |k| k.name.clone())
    }

    pub fn workspace(&self, id: &str) -> String {
        if id.is_empty() {
            return "(no workspace)".into();
        }
        self.workspaces
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    pub fn person(&self, id: &str) -> Option<(&str, &str, bool)> {
        self.people
            .get(id)
            .map(|(n, e, current)| (n.as_str(), e.as_str(), *current))
    }
}

impl Directory {
    /// The names of a service account's keys, sorted.
    pub fn service_account_keys(&self, id: &str) -> &[String] {
        self.service_accounts.get(id).map_or(&[], Vec::as_slice)
    }
}

/// Who an address already belongs to: a member, or a pending invite (until it expires).
/// Built once per snapshot, so checking a pasted list costs the list, not the organization.
pub struct Addresses {
    members: HashSet<String>,
    /// Lowercased address of each pending invite, with its latest expiry.
    invited: HashMap<String, DateTime<Utc>>,
}

impl Addresses {
    pub fn of(snapshot: &Snapshot) -> Arc<Addresses> {
        snapshot.derived(|s| {
            let mut invited: HashMap<String, DateTime<Utc>> = HashMap::new();
            for i in s
                .invites
                .iter()
                .filter(|i| i.status == crate::anthropic::InviteStatus::Pending)
            {
                let until = invited
                    .entry(i.email.to_lowercase())
                    .or_insert(i.expires_at);
                *until = (*until).max(i.expires_at);
            }
            Addresses {
                members: s.users.iter().map(|u| u.email.to_lowercase()).collect(),
                invited,
            }
        })
    }

    /// Why `email` (lowercased) would get no new invite at `now`, if so.
    pub fn taken(&self, email: &str, now: DateTime<Utc>) -> Option<&'static str> {
        if self.members.contains(email) {
            Some("already a member")
        } else if self.invited.get(email).is_some_and(|until| *until > now) {
            Some("already has a pending invite")
        } else {
            None
        }
    }
}
