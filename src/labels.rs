//! Plain words for the codes the organization and Orgkeeper use — roles above all — shared
//! by pages, the audit log's sentences and alerts, so one code always reads the same.

use crate::anthropic::{OrgRole, WorkspaceRole};
use crate::auth::Role;
use chrono::{DateTime, Utc};

/// A day as every page writes it, "Nov 24, 2026" (app.js keeps it a date in the reader's
/// language; the server's form is the one shown without JavaScript).
pub fn day_label(at: &DateTime<Utc>) -> String {
    calendar_day(at.date_naive())
}

/// A moment as every page writes it, "Nov 24, 2026, 14:05 UTC"; app.js shows it in the reader's
/// own time zone, with the UTC value on hover.
pub fn moment_label(at: &DateTime<Utc>) -> String {
    at.format("%b %-d, %Y, %H:%M UTC").to_string()
}

/// A calendar day (a UTC period of usage or cost) in the same form: "Nov 28, 2026".
pub fn calendar_day(day: chrono::NaiveDate) -> String {
    day.format("%b %-d, %Y").to_string()
}

/// A stored RFC 3339 timestamp as a `<time>` element written as [`moment_label`], for templates
/// (`|safe`): every character comes from the parsed date, so nothing needs escaping; a value
/// that does not parse is written as "unknown time".
pub fn time_tag(raw: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(raw) {
        Ok(at) => {
            let at = at.with_timezone(&Utc);
            format!(
                "<time datetime=\"{}\">{}</time>",
                at.to_rfc3339(),
                moment_label(&at)
            )
        }
        Err(_) => "unknown time".to_owned(),
    }
}

/// A model as people name it: "claude-sonnet-4-20250514" → "Claude Sonnet 4",
/// "claude-3-5-haiku-20241022" → "Claude 3.5 Haiku". The snapshot date is dropped (the id stays
/// on hover where a page needs it); an id that is not a Claude model's is kept as it is.
pub fn model(id: &str) -> String {
    let mut parts = id.split('-');
    if parts.next() != Some("claude") {
        return id.to_owned();
    }
    let mut words: Vec<String> = vec!["Claude".into()];
    let mut version: Vec<&str> = Vec::new();
    for part in parts {
        let numeric = !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
        if numeric && part.len() == 8 {
            continue; // the snapshot date
        }
        if numeric {
            version.push(part);
            continue;
        }
        if !version.is_empty() {
            words.push(version.join("."));
            version.clear();
        }
        if part.is_empty() {
            return id.to_owned();
        }
        words.push(capitalised(part));
    }
    if !version.is_empty() {
        words.push(version.join("."));
    }
    words.join(" ")
}

/// The text with its first letter upper case, for a phrase that starts a sentence.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A rate limiter's type as people read it ("Requests per minute").
pub fn limiter(kind: &str) -> String {
    match kind {
        "requests_per_minute" => "Requests per minute".into(),
        "input_tokens_per_minute" => "Input tokens per minute".into(),
        "input_tokens_per_minute_cache_aware" => {
            "Input tokens per minute (cache reads not counted)".into()
        }
        "output_tokens_per_minute" => "Output tokens per minute".into(),
        "tokens_per_minute" => "Tokens per minute".into(),
        "tokens_per_day" => "Tokens per day".into(),
        "tool_uses_per_second" => "Tool uses per second".into(),
        other => capitalised(&other.replace('_', " ")),
    }
}

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

/// Someone who left before Orgkeeper saw them, so only their id is known: pages say "a former
/// member" and keep the id for hover and the audit log (an id means nothing to a reader).
pub const FORMER_MEMBER: &str = "a former member";

/// A service account: an Admin key cannot read its name (only OAuth can list them), so pages
/// say what it is and name it by its keys where that helps.
pub const SERVICE_ACCOUNT: &str = "a service account";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_read_as_their_names() {
        assert_eq!(model("claude-sonnet-4-20250514"), "Claude Sonnet 4");
        assert_eq!(model("claude-3-5-haiku-20241022"), "Claude 3.5 Haiku");
        assert_eq!(model("claude-opus-4-1-20250805"), "Claude Opus 4.1");
        assert_eq!(model("claude-sonnet-4-5"), "Claude Sonnet 4.5");
        assert_eq!(model("gpt-x"), "gpt-x");
    }

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
