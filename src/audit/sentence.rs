//! Each action in one plain sentence, defined beside the actions themselves: what the audit
//! page, exports and reviews read ("demo-admin changed Barbara Hopper's role from Developer
//! to User").

use super::{Action, Outcome, Record};
/// "the workspace Research" / "the API key CI pipeline" / "the person ada@…", from a cost
/// center assignment's details.
fn assigned(details: &serde_json::Value) -> String {
    let kind = match details["kind"].as_str() {
        Some("key") => "the API key",
        Some("workspace") => "the workspace",
        Some("person") => "the person",
        _ => "something",
    };
    let name = details["target_name"]
        .as_str()
        .or(details["target_id"].as_str())
        .unwrap_or_default();
    format!("{kind} {name}")
}

/// " from Developer to User", from details `before`/`after` (plain values, or `field` inside).
fn from_to(details: &serde_json::Value, field: &str) -> String {
    let pick = |side: &str| -> Option<String> {
        let v = details.get(side)?;
        let v = v.get(field).unwrap_or(v);
        v.as_str().map(crate::labels::code)
    };
    match (pick("before"), pick("after")) {
        (Some(b), Some(a)) => format!(" from {b} to {a}"),
        (None, Some(a)) => format!(" to {a}"),
        _ => String::new(),
    }
}

impl Record {
    /// The action in one plain sentence: "demo-admin changed Barbara Hopper's role from
    /// Developer to User". A change that failed or was refused reads "tried to …"; `outcome`
    /// is the final outcome of the change (its outcome record's, for an intent).
    pub fn sentence(&self, outcome: Outcome, no_outcome_yet: bool) -> String {
        let r = self;
        let t = r
            .target_label
            .clone()
            .or_else(|| r.target_id.clone())
            .unwrap_or_else(|| "something".into());
        let d = &r.details;
        // A script's change names its token: "ada (with the token ci-bot) renamed …".
        let actor = match d["via"].as_str() {
            Some(via) => format!("{} (with the {via})", r.actor_name),
            None => r.actor_name.clone(),
        };
        let Some(action) = Action::from_code(&r.action) else {
            return format!("{actor}: {}", r.action);
        };
        if r.is_observed() {
            // Who did it, when the Activity Feed said so.
            let seen = &d["seen_in_feed"];
            let by = match (seen["actor"].as_str(), seen["ip"].as_str()) {
                (Some(actor), Some(ip)) => format!(", by {actor} from {ip}"),
                (Some(actor), None) => format!(", by {actor}"),
                _ => String::new(),
            };
            if action == Action::ObservedAttributed {
                let earlier = d["action"]
                    .as_str()
                    .and_then(Action::from_code)
                    .map_or("change", |a| a.label());
                let seq = d["record"].as_i64().unwrap_or_default();
                return format!("Activity Feed: record {seq} ({earlier} — {t}) was made{by}");
            }
            // Found by the sweep rather than named by the feed (service::sweep).
            let found = match (d["found_by"].as_str(), d["announced_by_feed"].as_bool()) {
                (Some("sweep"), Some(false)) if by.is_empty() => {
                    " (found by Orgkeeper's periodic check; the Activity Feed had not announced it)"
                }
                (Some("sweep"), _) => " (found by Orgkeeper's periodic check)",
                _ => "",
            };
            return format!(
                "Seen outside Orgkeeper: {} — {t}{by}{found}",
                action.label()
            );
        }
        if d["summary"] == true {
            // A flood-control summary (see service::refusals): how many, from how many addresses.
            let count = d["suppressed"].as_u64().unwrap_or_default();
            let from = match d["addresses"].as_u64() {
                Some(n) if n > 1 => format!(" from {n} addresses"),
                _ => String::new(),
            };
            let minutes = d["window_seconds"].as_u64().unwrap_or(60) / 60;
            return format!(
            "{count} more of \"{}\"{from} in {minutes} min, counted but not recorded one by one",
            action.label()
        );
        }
        use Action as A;
        // (what happened, what was attempted); `None` for records that are already a failure.
        let (done, attempt): (String, Option<String>) = match action {
            A::AuthLogin => ("signed in".into(), Some("sign in".into())),
            A::AuthLoginFailed => ("failed to sign in".into(), None),
            A::AuthLockedOut => ("was locked out after repeated failed sign-ins".into(), None),
            A::AuthLogout => ("signed out".into(), Some("sign out".into())),
            A::AuthSetupCompleted => (
                "created the first owner account".into(),
                Some("create the first owner account".into()),
            ),
            A::AccessDenied => (
                format!(
                    "was refused access{}",
                    d.get("path")
                        .and_then(|p| p.as_str())
                        .map(|p| format!(" to {p}"))
                        .unwrap_or_default()
                ),
                None,
            ),
            A::CsrfRejected => (
                "sent a form without a valid token; it was refused".into(),
                None,
            ),
            A::AccountCreated => (
                format!("created the dashboard account {t}"),
                Some(format!("create the dashboard account {t}")),
            ),
            A::AccountRoleChanged => (
                format!("changed the dashboard role of {t}{}", from_to(d, "role")),
                Some(format!(
                    "change the dashboard role of {t}{}",
                    from_to(d, "role")
                )),
            ),
            A::AccountWorkspacesChanged => (
                format!("changed the workspaces of {t}"),
                Some(format!("change the workspaces of {t}")),
            ),
            A::AccountDisabled => (
                format!("disabled the account {t}"),
                Some(format!("disable the account {t}")),
            ),
            A::AccountEnabled => (
                format!("enabled the account {t}"),
                Some(format!("enable the account {t}")),
            ),
            A::AccountPasswordChanged => (
                "changed their own password".into(),
                Some("change their own password".into()),
            ),
            A::AccountPasswordReset => (
                format!("reset the password of {t}"),
                Some(format!("reset the password of {t}")),
            ),
            A::AccountSessionsEnded => (
                format!("ended the sessions of {t}"),
                Some(format!("end the sessions of {t}")),
            ),
            A::AccountUnlocked => (
                format!("cleared the lockout of {t}"),
                Some(format!("clear the lockout of {t}")),
            ),
            A::MemberRoleChanged => (
                format!("changed {t}'s role{}", from_to(d, "role")),
                Some(format!("change {t}'s role{}", from_to(d, "role"))),
            ),
            A::MemberRemoved => (
                format!("removed {t} from the organization"),
                Some(format!("remove {t} from the organization")),
            ),
            A::InviteCreated => {
                let role = d
                    .get("role")
                    .and_then(|r| r.as_str())
                    .map(|r| format!(" as {}", crate::labels::code(r)))
                    .unwrap_or_default();
                (
                    format!("invited {t}{role}"),
                    Some(format!("invite {t}{role}")),
                )
            }
            A::InviteDeleted => (
                format!("deleted the invite to {t}"),
                Some(format!("delete the invite to {t}")),
            ),
            A::WorkspaceCreated => (
                format!("created the workspace {t}"),
                Some(format!("create the workspace {t}")),
            ),
            A::WorkspaceUpdated => {
                match (d["before"]["name"].as_str(), d["after"]["name"].as_str()) {
                    (Some(b), Some(a)) if a != b => (
                        format!("renamed the workspace {b} to {a}"),
                        Some(format!("rename the workspace {b} to {a}")),
                    ),
                    _ => (
                        format!("changed the colour of the workspace {t}"),
                        Some(format!("change the colour of the workspace {t}")),
                    ),
                }
            }
            A::WorkspaceArchived => (
                format!("archived the workspace {t}"),
                Some(format!("archive the workspace {t}")),
            ),
            A::WorkspaceMemberAdded => (
                format!(
                    "added {t} to a workspace{}",
                    from_to(d, "workspace_role").replace(" to ", " as ")
                ),
                Some(format!("add {t} to a workspace")),
            ),
            A::WorkspaceMemberRoleChanged => (
                format!(
                    "changed {t}'s workspace role{}",
                    from_to(d, "workspace_role")
                ),
                Some(format!(
                    "change {t}'s workspace role{}",
                    from_to(d, "workspace_role")
                )),
            ),
            A::WorkspaceMemberRemoved => (
                format!("removed {t} from a workspace"),
                Some(format!("remove {t} from a workspace")),
            ),
            A::KeyRenamed => match (d["before"]["name"].as_str(), d["after"]["name"].as_str()) {
                (Some(b), Some(a)) => (
                    format!("renamed the key {b} to {a}"),
                    Some(format!("rename the key {b} to {a}")),
                ),
                _ => (
                    format!("renamed the key {t}"),
                    Some(format!("rename the key {t}")),
                ),
            },
            A::KeyDeactivated => (
                format!("deactivated the key {t}"),
                Some(format!("deactivate the key {t}")),
            ),
            A::KeyReactivated => (
                format!("reactivated the key {t}"),
                Some(format!("reactivate the key {t}")),
            ),
            A::KeyArchived => (
                format!("archived the key {t}"),
                Some(format!("archive the key {t}")),
            ),
            A::KeyArchiveScheduled => (
                format!("scheduled the key {t} to be archived"),
                Some(format!("schedule the key {t} to be archived")),
            ),
            A::KeyArchiveScheduleCancelled => (
                format!("cancelled the scheduled archive of the key {t}"),
                Some(format!("cancel the scheduled archive of the key {t}")),
            ),
            A::KeyLeakReported => (
                format!("reported the key {t} as leaked"),
                Some(format!("report the key {t} as leaked")),
            ),
            A::OffboardingStarted => (
                format!("started offboarding {t}"),
                Some(format!("start offboarding {t}")),
            ),
            A::OffboardingResumed => (
                format!("resumed offboarding {t}"),
                Some(format!("resume offboarding {t}")),
            ),
            A::OffboardingCompleted => (
                format!("finished offboarding {t}"),
                Some(format!("finish offboarding {t}")),
            ),
            A::BudgetSet => (
                format!("set the monthly budget of {t}"),
                Some(format!("set the monthly budget of {t}")),
            ),
            A::BudgetRemoved => (
                format!("removed the monthly budget of {t}"),
                Some(format!("remove the monthly budget of {t}")),
            ),
            A::BudgetThresholdCrossed => (
                format!(
                    "recorded that {t} reached {}% of its budget",
                    d["threshold_percent"]
                ),
                None,
            ),
            A::AuditVerified => (
                "verified the audit chain".into(),
                Some("verify the audit chain".into()),
            ),
            A::AuditExported => (
                "exported the audit log".into(),
                Some("export the audit log".into()),
            ),
            A::AuditPruned => (
                "pruned old audit records".into(),
                Some("prune old audit records".into()),
            ),
            A::AuditBreakAcknowledged => (
                "acknowledged a break in the audit chain".into(),
                Some("acknowledge a break in the audit chain".into()),
            ),
            A::SsoMappingAdded => (
                format!("mapped the group {t} to a role"),
                Some(format!("map the group {t} to a role")),
            ),
            A::SsoMappingChanged => (
                format!("turned the group mapping {t} on or off"),
                Some(format!("change the group mapping {t}")),
            ),
            A::SsoMappingRemoved => (
                format!("removed the group mapping {t}"),
                Some(format!("remove the group mapping {t}")),
            ),
            A::SpendLimitSet => (
                format!("set the Anthropic spend limit of {t}"),
                Some(format!("set the Anthropic spend limit of {t}")),
            ),
            A::SpendLimitRemoved => (
                format!("removed the Anthropic spend limit of {t}"),
                Some(format!("remove the Anthropic spend limit of {t}")),
            ),
            A::WorkspaceRateLimitChanged => (
                format!("changed a rate limit of {t}"),
                Some(format!("change a rate limit of {t}")),
            ),
            A::LimitRequestCreated => (
                format!("asked for a higher spend limit for {t}"),
                Some(format!("ask for a higher spend limit for {t}")),
            ),
            A::LimitRequestApproved => (
                format!("approved the spend limit request for {t}"),
                Some(format!("approve the spend limit request for {t}")),
            ),
            A::LimitRequestDenied => (
                format!("denied the spend limit request for {t}"),
                Some(format!("deny the spend limit request for {t}")),
            ),
            A::CostCenterCreated => (
                format!("created the cost center {t}"),
                Some(format!("create the cost center {t}")),
            ),
            A::CostCenterRenamed => {
                let to = d["after"]["name"].as_str().unwrap_or_default();
                (
                    format!("renamed the cost center {t} to {to}"),
                    Some(format!("rename the cost center {t} to {to}")),
                )
            }
            A::CostCenterDeleted => (
                format!("deleted the cost center {t}"),
                Some(format!("delete the cost center {t}")),
            ),
            A::CostCenterAssigned => {
                let what = assigned(d);
                (
                    format!("assigned {what} to the cost center {t}"),
                    Some(format!("assign {what} to the cost center {t}")),
                )
            }
            A::CostCenterUnassigned => {
                let what = assigned(d);
                (
                    format!("took {what} out of the cost center {t}"),
                    Some(format!("take {what} out of the cost center {t}")),
                )
            }
            A::ScimUserProvisioned => (format!("provisioned {t}"), Some(format!("provision {t}"))),
            A::ScimUserChanged => (
                format!("changed the provisioned details of {t}"),
                Some(format!("change the provisioned details of {t}")),
            ),
            A::ScimUserDeprovisioned => (
                format!("deprovisioned {t}"),
                Some(format!("deprovision {t}")),
            ),
            A::ScimUserDeleted => (
                format!("deleted the provisioned person {t}"),
                Some(format!("delete the provisioned person {t}")),
            ),
            A::ScimGroupChanged => (
                format!("changed the provisioned group {t}"),
                Some(format!("change the provisioned group {t}")),
            ),
            A::ScimMappingChanged => (
                format!("changed what the provisioned group {t} gives"),
                Some(format!("change what the provisioned group {t} gives")),
            ),
            A::ScimDryRun => {
                let would = d["would"].as_str().unwrap_or("change something");
                (
                    format!("would have had to {would} (dry run, nothing changed)"),
                    None,
                )
            }
            A::TokenCreated => {
                let whose = d["account"]
                    .as_str()
                    .map(|a| format!(" for {a}"))
                    .unwrap_or_default();
                (
                    format!("created the API token {t}{whose}"),
                    Some(format!("create the API token {t}{whose}")),
                )
            }
            A::TokenRevoked => (
                format!("revoked the API token {t}"),
                Some(format!("revoke the API token {t}")),
            ),
            A::TokenExpired => (format!("recorded that the API token {t} expired"), None),
            A::TokenRejected => (
                format!(
                    "was refused: {}",
                    d["reason"].as_str().unwrap_or("the token is not valid")
                ),
                None,
            ),
            // Recorded by the organization sync or refusals: said with the action's label.
            A::ProxyHeaderRefused
            | A::MemberJoined
            | A::InviteAccepted
            | A::InviteExpired
            | A::KeyCreated
            | A::KeyExpired
            | A::OrgBaseline
            | A::ObservedAttributed => (format!("{}: {t}", action.label().to_lowercase()), None),
        };
        match (attempt, outcome, no_outcome_yet) {
            (Some(a), _, true) => format!("{actor} started to {a}"),
            (Some(a), Outcome::Failed | Outcome::Denied, _) => format!("{actor} tried to {a}"),
            _ => format!("{actor} {done}"),
        }
    }
}
