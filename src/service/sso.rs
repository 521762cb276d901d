//! Single sign-on group mappings (owners): adding, turning off or on, and removing one, and
//! what each does to the accounts of the identity provider, recorded account by account.

use serde_json::json;

use super::{Caller, ServiceError, Services};
use crate::audit::{Action, Outcome};
use crate::auth::sso::{self, AccessChange, GroupMapping};
use crate::auth::{Permission, Role};

pub async fn list_mappings(services: &Services) -> Result<Vec<GroupMapping>, ServiceError> {
    Ok(sso::list_mappings(&services.db).await?)
}

pub async fn find_mapping(services: &Services, id: i64) -> Result<GroupMapping, ServiceError> {
    sso::find_mapping(&services.db, id)
        .await?
        .ok_or(ServiceError::NotFound)
}

/// Audit records for accounts whose access a mapping (or their groups) changed.
pub(super) async fn record_access_changes(
    services: &Services,
    caller: &Caller,
    changes: &[AccessChange],
    why: &str,
) -> Result<(), ServiceError> {
    for change in changes {
        let before = &change.account;
        let (action, details) = match &change.after {
            None => (
                Action::AccountDisabled,
                json!({ "before": { "disabled": before.disabled, "role": before.role.as_str() },
                        "after": { "disabled": true }, "reason": why }),
            ),
            Some(grant) if before.disabled => (
                Action::AccountEnabled,
                json!({ "before": { "disabled": true },
                        "after": { "disabled": false, "role": grant.role.as_str(), "workspaces": grant.workspaces },
                        "reason": why }),
            ),
            Some(grant) if grant.role != before.role => (
                Action::AccountRoleChanged,
                json!({ "before": before.role.as_str(), "after": grant.role.as_str(),
                        "workspaces": grant.workspaces, "reason": why }),
            ),
            Some(grant) => (
                Action::AccountWorkspacesChanged,
                json!({ "before": before.workspaces, "after": grant.workspaces, "reason": why }),
            ),
        };
        services
            .record(
                caller,
                action,
                super::accounts::target(before),
                details,
                Outcome::Ok,
            )
            .await?;
    }
    Ok(())
}

/// Changes a mapping between an intent and an outcome record, then records what it did to
/// each account. Returns how many accounts changed.
async fn change<Fut>(
    services: &Services,
    caller: &Caller,
    action: Action,
    group: &str,
    details: serde_json::Value,
    change: Fut,
) -> Result<usize, ServiceError>
where
    Fut: std::future::Future<Output = Result<sso::Applied, crate::auth::accounts::AccountError>>,
{
    let target = super::target("sso_group", group.to_owned(), Some(group.to_owned()));
    let changes = services
        .local_change(
            caller,
            action,
            target,
            details,
            super::accounts::then_forget(services, super::accounts::Stale::Everyone, change),
            |_| None,
        )
        .await??;
    record_access_changes(
        services,
        caller,
        &changes,
        &format!("group mapping {group:?} changed"),
    )
    .await?;
    Ok(changes.len())
}

/// Maps a group to a role (and a team lead's workspaces).
pub async fn add_mapping(
    services: &Services,
    caller: &Caller,
    group: &str,
    role: Role,
    workspaces: Vec<String>,
) -> Result<usize, ServiceError> {
    services
        .require(caller, Permission::ManageAccounts, None)
        .await?;
    if role.is_workspace_scoped() {
        super::accounts::check_team_lead_workspaces(services, &workspaces)?;
    }
    let details = json!({ "before": null,
        "after": { "group": group, "role": role.as_str(), "workspaces": workspaces, "enabled": true } });
    let now = services.clock.now();
    change(
        services,
        caller,
        Action::SsoMappingAdded,
        group,
        details,
        sso::add_mapping(&services.db, group, role, &workspaces, now),
    )
    .await
}

pub async fn set_mapping_enabled(
    services: &Services,
    caller: &Caller,
    mapping: &GroupMapping,
    enabled: bool,
) -> Result<usize, ServiceError> {
    services
        .require(caller, Permission::ManageAccounts, None)
        .await?;
    let mut after = mapping.details();
    after["enabled"] = json!(enabled);
    let details = json!({ "before": mapping.details(), "after": after });
    change(
        services,
        caller,
        Action::SsoMappingChanged,
        &mapping.group_name,
        details,
        sso::set_mapping_enabled(&services.db, mapping.id, enabled),
    )
    .await
}

pub async fn remove_mapping(
    services: &Services,
    caller: &Caller,
    mapping: &GroupMapping,
) -> Result<usize, ServiceError> {
    services
        .require(caller, Permission::ManageAccounts, None)
        .await?;
    let details = json!({ "before": mapping.details(), "after": null });
    change(
        services,
        caller,
        Action::SsoMappingRemoved,
        &mapping.group_name,
        details,
        sso::remove_mapping(&services.db, mapping.id),
    )
    .await
}
