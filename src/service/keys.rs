//! Every change to an API key, with its rules: rename, deactivate, reactivate, archive (one
//! key or many), the response to a leak, and the key a caller may reach. Scheduled archives
//! are `schedules`; a member's keys in an offboarding are `offboarding`. The Admin API cannot
//! create or delete keys; archiving is the irreversible end.

use serde_json::{json, Value};

use super::{schedules, target, with_context, Caller, Change, OrgChange, ServiceError, Services};
use crate::anthropic::{ApiError, ApiKey, ApiKeyStatus, UpdateApiKey};
use crate::audit::{Action, Outcome, Target};
use crate::org::keys::is_live;
use crate::org::Touched;

/// The longest name a key may be given.
pub const MAX_NAME_CHARS: usize = 500;

/// The key from the model, if the caller may reach it; a key outside the caller's workspaces
/// is refused (and the refusal recorded) before anything about it is shown.
pub async fn find(services: &Services, caller: &Caller, id: &str) -> Result<ApiKey, ServiceError> {
    let keys = services.org.api_keys().await?;
    let key = keys
        .iter()
        .find(|k| k.id == id)
        .cloned()
        .ok_or(ServiceError::NotFound)?;
    if !caller.may_reach_key(&key) {
        let target = key_target(&key.id, &key.name);
        return Err(services
            .out_of_scope(caller, target, key.workspace_id())
            .await);
    }
    Ok(key)
}

/// The key as a change needs it: known from the API, or only by id and name (a schedule).
pub struct KeyRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub status: Option<&'a ApiKeyStatus>,
    pub workspace_id: Option<&'a str>,
}

impl<'a> From<&'a ApiKey> for KeyRef<'a> {
    fn from(key: &'a ApiKey) -> Self {
        KeyRef {
            id: &key.id,
            name: &key.name,
            status: Some(&key.status),
            workspace_id: key.workspace_id(),
        }
    }
}

pub fn key_target(id: &str, name: &str) -> Option<Target> {
    target("api_key", id.to_owned(), Some(name.to_owned()))
}

/// The action a status change is recorded as.
pub fn status_action(to: &ApiKeyStatus) -> Action {
    match to {
        ApiKeyStatus::Active => Action::KeyReactivated,
        ApiKeyStatus::Archived => Action::KeyArchived,
        _ => Action::KeyDeactivated,
    }
}

/// Renames a key: a name of 1 to 500 characters, without the spaces around it.
pub async fn rename(
    services: &Services,
    caller: &Caller,
    key: &ApiKey,
    name: &str,
) -> Change<ApiKey> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ServiceError::Invalid(format!(
            "Give the key a name (at most {MAX_NAME_CHARS} characters)."
        )));
    }
    let update = UpdateApiKey {
        name: Some(name.to_owned()),
        status: None,
    };
    services
        .org_change(
            caller,
            OrgChange {
                action: Action::KeyRenamed,
                target: key_target(&key.id, &key.name),
                details: json!({ "before": { "name": key.name }, "after": { "name": name } }),
                workspace: key.workspace_id().map(str::to_owned),
                touches: vec![Touched::Key(key.id.clone())],
            },
            services.org.api().update_api_key(&key.id, &update),
        )
        .await
}

/// Changes a key's status. `context` adds why (`{"bulk": true}`, `{"reason": "leaked"}`, the
/// offboarding run, the schedule) to the audit details.
///
/// The rules every path shares: archiving completes the key's pending schedule (nothing is
/// left to archive later); reactivating cancels it (a key someone needs again must not be
/// archived behind their back). Returns whether a schedule was cancelled.
pub async fn set_status(
    services: &Services,
    caller: &Caller,
    key: KeyRef<'_>,
    to: ApiKeyStatus,
    context: Value,
) -> Change<StatusChanged> {
    let details = with_context(
        json!({
            "name": key.name,
            "before": { "status": key.status.map(ApiKeyStatus::as_str) },
            "after": { "status": to.as_str() },
        }),
        context,
    );
    let update = UpdateApiKey {
        name: None,
        status: Some(to.clone()),
    };
    let result = services
        .org_change(
            caller,
            OrgChange {
                action: status_action(&to),
                target: key_target(key.id, key.name),
                details,
                workspace: key.workspace_id.map(str::to_owned),
                touches: vec![Touched::Key(key.id.to_owned())],
            },
            services.org.api().update_api_key(key.id, &update),
        )
        .await?;
    let updated = match result {
        Ok(updated) => updated,
        Err(error) => return Ok(Err(error)),
    };
    let mut schedule_cancelled = false;
    match to {
        ApiKeyStatus::Archived => schedules::complete_for_key(services, key.id).await?,
        ApiKeyStatus::Active => {
            schedule_cancelled =
                schedules::cancel_for_key(services, caller, key.id, "the key was reactivated")
                    .await?;
        }
        _ => {}
    }
    Ok(Ok(StatusChanged {
        key: updated,
        schedule_cancelled,
    }))
}

/// A status change that went through.
pub struct StatusChanged {
    pub key: ApiKey,
    /// The key's pending archive was cancelled because it was reactivated.
    pub schedule_cancelled: bool,
}

/// What the response to a leaked key did.
pub enum LeakResponse {
    /// The key worked; it is deactivated now.
    Deactivated,
    /// The key was already unusable (inactive, archived or expired); the leak is recorded.
    AlreadyUnusable,
    /// The leak is recorded, but the key could not be deactivated and still works.
    StillWorks(ApiError),
}

/// The leak policy: the incident is recorded first (whatever happens next, it is on record,
/// with the person's note), then a key that still works is deactivated, its audit record
/// naming the incident.
pub async fn report_leak(
    services: &Services,
    caller: &Caller,
    key: &ApiKey,
    note: &str,
) -> Result<LeakResponse, ServiceError> {
    services
        .require(
            caller,
            crate::auth::Permission::ManageOrganization,
            key_target(&key.id, &key.name),
        )
        .await?;
    let note: String = note.trim().chars().take(2000).collect();
    let incident = services
        .record(
            caller,
            Action::KeyLeakReported,
            key_target(&key.id, &key.name),
            json!({ "note": note, "status": key.status.as_str() }),
            Outcome::Ok,
        )
        .await?;
    if key.status != ApiKeyStatus::Active {
        return Ok(LeakResponse::AlreadyUnusable);
    }
    let context = json!({ "reason": "leaked", "incident": incident });
    Ok(
        match set_status(
            services,
            caller,
            key.into(),
            ApiKeyStatus::Inactive,
            context,
        )
        .await?
        {
            Ok(_) => LeakResponse::Deactivated,
            Err(error) => LeakResponse::StillWorks(error),
        },
    )
}

/// At most this many matches of a leak search are listed.
pub const MAX_MATCHES: usize = 20;

/// The keys a leak search designates, among those the caller may reach: by id, part of the
/// name or hint, or the whole secret (which starts like its hint's beginning and ends like
/// its end). Keys that still work come first: those are the ones to stop. The text is never
/// stored.
pub fn search<'a>(keys: &'a [ApiKey], caller: &Caller, query: &str) -> Vec<&'a ApiKey> {
    let query = query.trim();
    if query.len() < 3 {
        return Vec::new();
    }
    let mut found: Vec<&ApiKey> = keys
        .iter()
        .filter(|k| caller.may_reach_key(k) && matches(k, query))
        .collect();
    found.sort_by_key(|k| (!is_live(k), std::cmp::Reverse(k.created_at)));
    found
}

/// Whether `query` designates this key.
fn matches(key: &ApiKey, query: &str) -> bool {
    if key.id == query {
        return true;
    }
    let lower = query.to_lowercase();
    if key.name.to_lowercase().contains(&lower) {
        return true;
    }
    let Some(hint) = key.partial_key_hint.as_deref() else {
        return false;
    };
    if hint.contains(query) {
        return true;
    }
    match hint.split_once("...") {
        Some((head, tail)) if !head.is_empty() && !tail.is_empty() => {
            query.len() > hint.len() && query.starts_with(head) && query.ends_with(tail)
        }
        _ => false,
    }
}

/// A change applied to many keys at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkAction {
    Deactivate,
    Archive,
}

impl BulkAction {
    pub fn parse(text: &str) -> Result<BulkAction, ServiceError> {
        match text {
            "deactivate" => Ok(BulkAction::Deactivate),
            "archive" => Ok(BulkAction::Archive),
            _ => Err(ServiceError::Invalid(
                "Choose whether to deactivate or archive the selected keys.".into(),
            )),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            BulkAction::Deactivate => "deactivate",
            BulkAction::Archive => "archive",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            BulkAction::Deactivate => "Deactivate",
            BulkAction::Archive => "Archive",
        }
    }

    fn status(self) -> ApiKeyStatus {
        match self {
            BulkAction::Deactivate => ApiKeyStatus::Inactive,
            BulkAction::Archive => ApiKeyStatus::Archived,
        }
    }

    /// Why this key is left alone, if it is: there is nothing to change.
    pub fn skip_reason(self, key: &ApiKey) -> Option<&'static str> {
        match (self, &key.status) {
            (BulkAction::Deactivate, ApiKeyStatus::Inactive) => Some("already inactive"),
            (_, ApiKeyStatus::Archived) => Some("already archived"),
            (BulkAction::Deactivate, ApiKeyStatus::Expired) => {
                Some("expired: it no longer works and can only be archived")
            }
            _ => None,
        }
    }
}

/// The keys `ids` name, each once, in that order; unknown ids are ignored and one outside the
/// caller's workspaces refuses the whole selection (recorded like opening it).
pub async fn selection(
    services: &Services,
    caller: &Caller,
    ids: &[String],
) -> Result<Vec<ApiKey>, ServiceError> {
    let keys = services.org.api_keys().await?;
    let mut out: Vec<ApiKey> = Vec::new();
    for id in ids {
        if out.iter().any(|k| &k.id == id) {
            continue;
        }
        if let Some(key) = keys.iter().find(|k| &k.id == id) {
            if !caller.may_reach_key(key) {
                let target = key_target(&key.id, &key.name);
                return Err(services
                    .out_of_scope(caller, target, key.workspace_id())
                    .await);
            }
            out.push(key.clone());
        }
    }
    Ok(out)
}

/// What a bulk change did to one key.
pub enum BulkResult {
    Skipped(&'static str),
    Done,
    Failed(ApiError),
}

/// Applies `action` to each key in turn, one audited change per key (marked `bulk`); a
/// failure on one key never stops the others.
pub async fn bulk(
    services: &Services,
    caller: &Caller,
    action: BulkAction,
    keys: &[ApiKey],
) -> Result<Vec<BulkResult>, ServiceError> {
    let mut results = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(reason) = action.skip_reason(key) {
            results.push(BulkResult::Skipped(reason));
            continue;
        }
        let context = json!({ "bulk": true });
        results.push(
            match set_status(services, caller, key.into(), action.status(), context).await? {
                Ok(_) => BulkResult::Done,
                Err(error) => BulkResult::Failed(error),
            },
        );
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hint: &str) -> ApiKey {
        ApiKey {
            id: "apikey_x".into(),
            object_type: "api_key".into(),
            name: "Billing service".into(),
            status: ApiKeyStatus::Active,
            created_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            created_by: None,
            expires_at: None,
            partial_key_hint: Some(hint.into()),
            principal: None,
            scope: None,
            legacy_workspace_id: None,
        }
    }

    #[test]
    fn a_pasted_full_key_finds_its_hint() {
        let k = key("sk-ant-api03-R2D...igAA");
        assert!(matches(&k, "sk-ant-api03-R2DxxxxxxxxxxxxxxxxxxxxxxxxigAA"));
        assert!(matches(&k, "R2D...igAA"));
        assert!(matches(&k, "billing"));
        assert!(!matches(&k, "sk-ant-api03-ZZZxxxxxxxxxxxxxxxxxxxxxxxigAA"));
    }
}
