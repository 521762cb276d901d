//! Plain words for the codes the organization and Orgkeeper use — roles above all — shared
//! by pages, the audit log's sentences and alerts, so one code always reads the same.

use crate::anthropic::{OrgRole, WorkspaceRole};
use crate::auth::Role;

/// An organization role.
pub fn org_role(role: &OrgRole) -> String {
    match role {
        OrgRole::User => "User".into(),
        OrgRole::ClaudeCodeUser => "Claude Code user".into(),
        OrgRole::Developer => "Developer".into(),
        OrgRole::Billing => "Billing".into(),
        OrgRole::Admin => "Admin".into(),
        OrgRole::Managed => "Managed".into(),
        OrgRole::MembershipAdmin => "Membership admin".into(),
        OrgRole::Owner => "Owner".into(),
        OrgRole::PrimaryOwner => "Primary owner".into(),
        OrgRole::Other(other) => other.clone(),
    }
}

/// People with an organization role, as a heading counts them ("Developers").
pub fn org_role_plural(role: &OrgRole) -> String {
    match role {
        OrgRole::Billing | OrgRole::Other(_) => org_role(role),
        role => format!("{}s", org_role(role)),
    }
}

/// What an assignable organization role allows, for the role pickers.
pub fn org_role_description(role: &OrgRole) -> &'static str {
    match role {
        OrgRole::User => "uses the Workbench and playground",
        OrgRole::ClaudeCodeUser => "the Workbench plus Claude Code",
        OrgRole::Developer => "can also manage API keys",
        OrgRole::Billing => "can also see and manage billing",
        OrgRole::Admin => "everything, including managing members",
        _ => "",
    }
}

/// A workspace role.
pub fn workspace_role(role: &WorkspaceRole) -> String {
    match role {
        WorkspaceRole::WorkspaceUser => "Workspace user".into(),
        WorkspaceRole::WorkspaceRestrictedDeveloper => "Workspace limited developer".into(),
        WorkspaceRole::WorkspaceDeveloper => "Workspace developer".into(),
        WorkspaceRole::WorkspaceAdmin => "Workspace admin".into(),
        WorkspaceRole::WorkspaceBilling => "Workspace billing".into(),
        WorkspaceRole::Other(other) => other.clone(),
    }
}

/// Any role code in plain words: an organization role, a workspace role or a dashboard role
/// (`claude_code_user` → "Claude Code user"); another code with its underscores as spaces
/// and a capital.
pub fn code(code: &str) -> String {
    if let role @ (OrgRole::User
    | OrgRole::ClaudeCodeUser
    | OrgRole::Developer
    | OrgRole::Billing
    | OrgRole::Admin
    | OrgRole::Managed
    | OrgRole::MembershipAdmin
    | OrgRole::Owner
    | OrgRole::PrimaryOwner) = OrgRole::parse(code)
    {
        return org_role(&role);
    }
    if let role @ (WorkspaceRole::WorkspaceUser
    | WorkspaceRole::WorkspaceRestrictedDeveloper
    | WorkspaceRole::WorkspaceDeveloper
    | WorkspaceRole::WorkspaceAdmin
    | WorkspaceRole::WorkspaceBilling) = WorkspaceRole::parse(code)
    {
        return workspace_role(&role);
    }
    if let Ok(role) = code.parse::<Role>() {
        return role.label().to_owned();
    }
    let spaced = code.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

/// An audit action code in plain words (`key.deactivated` → "Key deactivated"), legacy codes
/// included; a code no release wrote reads with its dots and underscores as spaces.
pub fn action(code: &str) -> String {
    match crate::audit::Action::from_code(code) {
        Some(action) => action.label().to_owned(),
        None => self::code(&code.replace('.', " ")),
    }
}

/// Someone the organization no longer lists and whose name Orgkeeper never saw, by the id a
/// key or a record keeps: "a former member (id user_015oNMsu…)", never the bare id. The id is
/// cut after 13 characters, enough to tell two apart at a glance; pages that need the whole
/// id put it in a title.
pub fn former_member(id: &str) -> String {
    let short: String = id.chars().take(13).collect();
    if short.len() < id.len() {
        format!("a former member (id {short}…)")
    } else {
        format!("a former member (id {id})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_code_reads_as_its_label() {
        assert_eq!(action("key.deactivated"), "Key deactivated");
        assert_eq!(action("spend_limit.set"), "Anthropic spend limit set");
        assert_eq!(
            action("workspace.member_removed"),
            "Removed from a workspace"
        );
        assert_eq!(action("made_up.thing"), "Made up thing");
    }

    #[test]
    fn a_person_known_only_by_id_reads_as_a_former_member() {
        assert_eq!(
            former_member("user_015oNMsuv2TJznQYqVJmkHwx"),
            "a former member (id user_015oNMsu…)"
        );
        assert_eq!(former_member("user_1"), "a former member (id user_1)");
    }

    #[test]
    fn every_code_reads_as_its_label_says() {
        assert_eq!(code("claude_code_user"), "Claude Code user");
        assert_eq!(
            code("workspace_restricted_developer"),
            "Workspace limited developer"
        );
        assert_eq!(code("team_lead"), "Team lead");
        assert_eq!(code("some_new_thing"), "Some new thing");
    }
}
