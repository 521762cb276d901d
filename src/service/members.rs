//! Organization members: role changes and removal.

use serde_json::json;

use super::{target, with_context, Caller, Change, OrgChange, Services};
use crate::anthropic::{OrgRole, User, UserDeleted};
use crate::audit::{Action, Target};
use crate::org::Touched;

/// A member as the audit log names them: their id, labelled with who they are.
pub fn member_target(user_id: &str, label: &str) -> Option<Target> {
    target("member", user_id.to_owned(), Some(label.to_owned()))
}

/// What an organization role lets a person do, in plain words (the Console's role table).
fn powers(role: &OrgRole) -> &'static [&'static str] {
    match role {
        OrgRole::User => &["use the Workbench and playground"],
        OrgRole::ClaudeCodeUser => &["use the Workbench and playground", "use Claude Code"],
        OrgRole::Developer => &[
            "use the Workbench and playground",
            "create and manage API keys",
        ],
        OrgRole::Billing => &[
            "use the Workbench and playground",
            "create and manage API keys",
            "see and manage billing",
        ],
        OrgRole::Admin => &[
            "use the Workbench and playground",
            "create and manage API keys",
            "see and manage billing",
            "manage members, workspaces and settings",
        ],
        _ => &[],
    }
}

/// What changing someone's organization role from `from` to `to` gives them and takes away,
/// so a person sees it before the change is applied: (gains, loses).
pub fn role_change_effects(from: &OrgRole, to: &OrgRole) -> (Vec<&'static str>, Vec<&'static str>) {
    let (before, after) = (powers(from), powers(to));
    (
        after
            .iter()
            .filter(|p| !before.contains(p))
            .copied()
            .collect(),
        before
            .iter()
            .filter(|p| !after.contains(p))
            .copied()
            .collect(),
    )
}

/// Changes a member's organization role.
pub async fn change_role(
    services: &Services,
    caller: &Caller,
    user: &User,
    role: OrgRole,
) -> Change<User> {
    services
        .org_change(
            caller,
            OrgChange {
                action: Action::MemberRoleChanged,
                target: member_target(&user.id, &user.email),
                details: json!({ "before": user.role.as_str(), "after": role.as_str(), "email": user.email }),
                workspace: None,
                // Workspace roles follow some organization roles (admin, billing).
                touches: vec![
                    Touched::User(user.id.clone()),
                    Touched::MembershipsOfUser(user.id.clone()),
                ],
            },
            services.org.api().update_user_role(&user.id, role.clone()),
        )
        .await
}

/// Removes a member from the organization. Their personal API keys are archived by Anthropic.
pub async fn remove(
    services: &Services,
    caller: &Caller,
    user_id: &str,
    email: &str,
    context: serde_json::Value,
) -> Change<UserDeleted> {
    let details = with_context(json!({ "email": email }), context);
    services
        .org_change(
            caller,
            OrgChange {
                action: Action::MemberRemoved,
                target: member_target(user_id, email),
                details,
                workspace: None,
                // Anthropic removes their memberships and archives their personal keys.
                touches: vec![
                    Touched::User(user_id.to_owned()),
                    Touched::MembershipsOfUser(user_id.to_owned()),
                    Touched::KeysOfUser(user_id.to_owned()),
                ],
            },
            services.org.api().remove_user(user_id),
        )
        .await
}
