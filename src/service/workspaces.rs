//! Workspaces and their members.

use serde_json::{json, Value};

use super::{schedules, target, with_context, Caller, Change, OrgChange, ServiceError, Services};
use crate::anthropic::{
    ApiKeyStatus, Workspace, WorkspaceMember, WorkspaceMemberDeleted, WorkspaceRole,
};
use crate::audit::{Action, Target};
use crate::org::Touched;

pub fn workspace_target(workspace: &Workspace) -> Option<Target> {
    target("workspace", &workspace.id, Some(workspace.name.clone()))
}

/// The target of a membership change: the person, labelled with the workspace.
fn membership_target(workspace: &Workspace, user_id: &str, user_label: &str) -> Option<Target> {
    target(
        "workspace_member",
        user_id,
        Some(format!("{user_label} in {}", workspace.name)),
    )
}

/// The workspace roles anyone may be given: every role but `workspace_billing`, which comes
/// only with the organization's billing role.
pub fn assignable_roles() -> Vec<WorkspaceRole> {
    WorkspaceRole::KNOWN
        .iter()
        .filter(|r| **r != WorkspaceRole::WorkspaceBilling)
        .cloned()
        .collect()
}

/// The workspace from the model, if the caller may reach it (and whether it is the default
/// workspace). Another workspace is refused, and the refusal recorded, before anything about
/// it is read.
pub async fn readable(
    services: &Services,
    caller: &Caller,
    id: &str,
) -> Result<(Workspace, bool), ServiceError> {
    if !caller.may_touch_workspace(id) {
        return Err(services
            .out_of_scope(caller, target("workspace", id, None), Some(id))
            .await);
    }
    let all = services.org.workspaces().await?;
    let is_default = services.org.default_workspace_id().await?.as_deref() == Some(id);
    let workspace = all
        .iter()
        .find(|w| w.id == id)
        .cloned()
        .ok_or(ServiceError::NotFound)?;
    Ok((workspace, is_default))
}

/// Creates a workspace. Never retried automatically: a retry could create two.
pub async fn create(
    services: &Services,
    caller: &Caller,
    name: &str,
    color: Option<&str>,
) -> Change<Workspace> {
    services
        .org_change_creating(
            caller,
            OrgChange {
                action: Action::WorkspaceCreated,
                target: target("workspace", "(new)", Some(name.to_owned())),
                details: json!({ "after": { "name": name, "display_color": color } }),
                workspace: None,
                touches: Vec::new(),
            },
            services.org.api().create_workspace(name, color),
            workspace_target,
        )
        .await
}

/// Renames and/or recolours a workspace (`None` leaves a field as it is).
pub async fn update(
    services: &Services,
    caller: &Caller,
    workspace: &Workspace,
    name: Option<&str>,
    color: Option<&str>,
) -> Change<Workspace> {
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    if let Some(name) = name {
        before.insert("name".into(), json!(workspace.name));
        after.insert("name".into(), json!(name));
    }
    if let Some(color) = color {
        before.insert("display_color".into(), json!(workspace.display_color));
        after.insert("display_color".into(), json!(color));
    }
    services
        .org_change(
            caller,
            OrgChange {
                action: Action::WorkspaceUpdated,
                target: workspace_target(workspace),
                details: json!({ "before": before, "after": after }),
                workspace: Some(workspace.id.clone()),
                touches: vec![Touched::Workspace(workspace.id.clone())],
            },
            services
                .org
                .api()
                .update_workspace(&workspace.id, name, color),
        )
        .await
}

/// Archives a workspace. Anthropic archives its API keys with it, so their pending archive
/// schedules are completed here (otherwise the scheduler would archive them a second time).
pub async fn archive(
    services: &Services,
    caller: &Caller,
    workspace: &Workspace,
) -> Change<Workspace> {
    let keys_before: Vec<String> = services
        .org
        .api_keys()
        .await
        .map(|keys| {
            keys.iter()
                .filter(|k| k.workspace_id() == Some(workspace.id.as_str()))
                .filter(|k| k.status != ApiKeyStatus::Archived)
                .map(|k| k.id.clone())
                .collect()
        })
        .unwrap_or_default();
    let result = services
        .org_change(
            caller,
            OrgChange {
                action: Action::WorkspaceArchived,
                target: workspace_target(workspace),
                details: json!({
                    "before": { "archived": workspace.is_archived() },
                    "after": { "archived": true },
                }),
                workspace: Some(workspace.id.clone()),
                touches: vec![
                    Touched::Workspace(workspace.id.clone()),
                    Touched::KeysOfWorkspace(workspace.id.clone()),
                    Touched::MembersOfWorkspace(workspace.id.clone()),
                ],
            },
            services.org.api().archive_workspace(&workspace.id),
        )
        .await?;
    if result.is_ok() {
        schedules::complete_for_keys(services, &keys_before).await?;
    }
    Ok(result)
}

/// The audit description of a membership change: who, where, before → after.
fn membership_change(
    action: Action,
    workspace: &Workspace,
    (user_id, user_label): (&str, &str),
    before: Value,
    after: Value,
) -> OrgChange {
    OrgChange {
        action,
        target: membership_target(workspace, user_id, user_label),
        details: json!({
            "workspace_id": workspace.id,
            "user_id": user_id,
            "before": before,
            "after": after,
        }),
        workspace: Some(workspace.id.clone()),
        touches: vec![Touched::Membership {
            workspace: workspace.id.clone(),
            user: user_id.to_owned(),
        }],
    }
}

/// Adds an organization member to a workspace.
pub async fn add_member(
    services: &Services,
    caller: &Caller,
    workspace: &Workspace,
    person: (&str, &str),
    role: &WorkspaceRole,
) -> Change<WorkspaceMember> {
    let after = json!({ "workspace_role": role.as_str() });
    let change = membership_change(
        Action::WorkspaceMemberAdded,
        workspace,
        person,
        Value::Null,
        after,
    );
    let call = services
        .org
        .api()
        .add_workspace_member(&workspace.id, person.0, role.clone());
    services.org_change(caller, change, call).await
}

/// Changes someone's role in a workspace. `before` is their current role, if known.
pub async fn change_member_role(
    services: &Services,
    caller: &Caller,
    workspace: &Workspace,
    person: (&str, &str),
    before: Option<&str>,
    role: &WorkspaceRole,
) -> Change<WorkspaceMember> {
    let (before, after) = (
        json!({ "workspace_role": before }),
        json!({ "workspace_role": role.as_str() }),
    );
    let change = membership_change(
        Action::WorkspaceMemberRoleChanged,
        workspace,
        person,
        before,
        after,
    );
    let call = services
        .org
        .api()
        .update_workspace_member(&workspace.id, person.0, role.clone());
    services.org_change(caller, change, call).await
}

/// Removes someone from a workspace (they stay in the organization). `context` adds why
/// (an offboarding run) to the audit details.
pub async fn remove_member(
    services: &Services,
    caller: &Caller,
    workspace: &Workspace,
    person: (&str, &str),
    before: Option<&str>,
    context: Value,
) -> Change<WorkspaceMemberDeleted> {
    let before = json!({ "workspace_role": before });
    let mut change = membership_change(
        Action::WorkspaceMemberRemoved,
        workspace,
        person,
        before,
        Value::Null,
    );
    change.details = with_context(change.details, context);
    let call = services
        .org
        .api()
        .remove_workspace_member(&workspace.id, person.0);
    services.org_change(caller, change, call).await
}
