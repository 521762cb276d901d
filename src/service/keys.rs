//! API key changes: rename, deactivate, reactivate, archive. The Admin API cannot create or
//! delete keys; archiving is the irreversible end.

use serde_json::{json, Value};

use super::{schedules, target, with_context, Caller, Change, OrgChange, Services};
use crate::anthropic::{ApiKey, ApiKeyStatus, UpdateApiKey};
use crate::audit::{Action, Target};
use crate::org::Touched;

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

/// Renames a key.
pub async fn rename(
    services: &Services,
    caller: &Caller,
    key: &ApiKey,
    name: &str,
) -> Change<ApiKey> {
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
