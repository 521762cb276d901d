//! Every action the audit log records, each with one stable code.
//!
//! Codes are part of the product's contract with reviewers (filters, exports, SIEM rules), so
//! a code never changes once written. Where an older release wrote a second code for the same
//! action, that code is listed as a legacy alias: records keep it (the chain must verify), and
//! the audit filter finds both.

use std::fmt;

macro_rules! actions {
    ($( $variant:ident = $code:literal, $group:literal, $label:literal $(, legacy = [$($legacy:literal),*])? ;)*) => {
        /// One logical action. See [`Action::code`] for the stored spelling.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            /// Every action, in the order the audit page's picker lists them.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The stable code stored in the log (`member.role_changed`).
            pub fn code(self) -> &'static str {
                match self {
                    $(Action::$variant => $code,)*
                }
            }

            /// The area the audit page groups it under.
            pub fn group(self) -> &'static str {
                match self {
                    $(Action::$variant => $group,)*
                }
            }

            /// A plain description for people ("Member role changed").
            pub fn label(self) -> &'static str {
                match self {
                    $(Action::$variant => $label,)*
                }
            }

            /// Codes an older release wrote for this same action.
            pub fn legacy_codes(self) -> &'static [&'static str] {
                match self {
                    $(Action::$variant => &[$($($legacy),*)?],)*
                }
            }
        }
    };
}

actions! {
    AuthLogin = "auth.login", "Sign-in", "Signed in";
    AuthLoginFailed = "auth.login_failed", "Sign-in", "Sign-in failed";
    AuthLockedOut = "auth.locked_out", "Sign-in", "Account locked after failed sign-ins";
    AuthLogout = "auth.logout", "Sign-in", "Signed out";
    AuthSetupCompleted = "auth.setup_completed", "Sign-in", "First owner created";
    AccessDenied = "access.denied", "Security", "Access refused";
    CsrfRejected = "security.csrf_rejected", "Security", "Form without a valid token refused";
    AccountCreated = "account.created", "Accounts", "Account created";
    AccountRoleChanged = "account.role_changed", "Accounts", "Account role changed";
    AccountWorkspacesChanged = "account.workspaces_changed", "Accounts", "Team lead workspaces changed";
    AccountDisabled = "account.disabled", "Accounts", "Account disabled";
    AccountEnabled = "account.enabled", "Accounts", "Account enabled";
    AccountPasswordChanged = "account.password_changed", "Accounts", "Own password changed";
    AccountPasswordReset = "account.password_reset", "Accounts", "Password reset";
    AccountSessionsEnded = "account.sessions_ended", "Accounts", "Sessions ended";
    AccountUnlocked = "account.unlocked", "Accounts", "Lockout cleared";
    MemberRoleChanged = "member.role_changed", "Members", "Member role changed";
    MemberRemoved = "member.removed", "Members", "Member removed from the organization";
    InviteCreated = "invite.created", "Invites", "Invite sent";
    InviteDeleted = "invite.deleted", "Invites", "Invite deleted";
    WorkspaceCreated = "workspace.created", "Workspaces", "Workspace created";
    WorkspaceUpdated = "workspace.updated", "Workspaces", "Workspace renamed or recoloured";
    WorkspaceArchived = "workspace.archived", "Workspaces", "Workspace archived";
    WorkspaceMemberAdded = "workspace_member.added", "Workspaces", "Added to a workspace";
    WorkspaceMemberRoleChanged = "workspace_member.role_changed", "Workspaces", "Workspace role changed";
    WorkspaceMemberRemoved = "workspace_member.removed", "Workspaces", "Removed from a workspace",
        legacy = ["workspace.member_removed"];
    KeyRenamed = "key.renamed", "API keys", "Key renamed";
    KeyDeactivated = "key.deactivated", "API keys", "Key deactivated";
    KeyReactivated = "key.reactivated", "API keys", "Key reactivated";
    KeyArchived = "key.archived", "API keys", "Key archived";
    KeyArchiveScheduled = "key.archive_scheduled", "API keys", "Key archive scheduled";
    KeyArchiveScheduleCancelled = "key.archive_schedule_cancelled", "API keys", "Scheduled key archive cancelled";
    KeyLeakReported = "key.leak_reported", "API keys", "Key reported as leaked";
    OffboardingStarted = "offboarding.started", "Offboarding", "Offboarding started";
    OffboardingResumed = "offboarding.resumed", "Offboarding", "Offboarding resumed";
    OffboardingCompleted = "offboarding.completed", "Offboarding", "Offboarding finished";
    BudgetSet = "budget.set", "Budgets", "Budget set";
    BudgetRemoved = "budget.removed", "Budgets", "Budget removed";
    BudgetThresholdCrossed = "budget.threshold_crossed", "Budgets", "Budget threshold crossed";
    AuditVerified = "audit.verified", "Audit log", "Chain verified";
    AuditExported = "audit.exported", "Audit log", "Log exported";
    AuditPruned = "audit.pruned", "Audit log", "Old records pruned";
    AuditBreakAcknowledged = "audit.break_acknowledged", "Audit log", "Broken chain acknowledged";
    MemberJoined = "member.joined", "Members", "Joined the organization";
    InviteAccepted = "invite.accepted", "Invites", "Invite accepted";
    InviteExpired = "invite.expired", "Invites", "Invite expired";
    KeyCreated = "key.created", "API keys", "Key created";
    KeyExpired = "key.expired", "API keys", "Key expired";
    OrgBaseline = "org.baseline", "Organization", "Organization first read (baseline)";
    ObservedAttributed = "observed.attributed", "Organization", "Outside change attributed (Activity Feed)";
    SsoMappingAdded = "sso.mapping_added", "Accounts", "Group mapping added";
    SsoMappingChanged = "sso.mapping_changed", "Accounts", "Group mapping turned on or off";
    SsoMappingRemoved = "sso.mapping_removed", "Accounts", "Group mapping removed";
    ProxyHeaderRefused = "security.proxy_header_refused", "Security", "Identity header from an untrusted address refused";
    SpendLimitSet = "spend_limit.set", "Limits", "Anthropic spend limit set";
    SpendLimitRemoved = "spend_limit.removed", "Limits", "Anthropic spend limit removed";
    WorkspaceRateLimitChanged = "rate_limit.workspace_changed", "Limits", "Workspace rate limit changed";
    LimitRequestCreated = "limit_request.created", "Limits", "Higher spend limit requested";
    LimitRequestApproved = "limit_request.approved", "Limits", "Spend limit request approved";
    LimitRequestDenied = "limit_request.denied", "Limits", "Spend limit request denied";
    CostCenterCreated = "cost_center.created", "Cost centers", "Cost center created";
    CostCenterRenamed = "cost_center.renamed", "Cost centers", "Cost center renamed";
    CostCenterDeleted = "cost_center.deleted", "Cost centers", "Cost center deleted";
    CostCenterAssigned = "cost_center.assigned", "Cost centers", "Assigned to a cost center";
    CostCenterUnassigned = "cost_center.unassigned", "Cost centers", "Taken out of a cost center";
    TokenCreated = "token.created", "Tokens", "API token created";
    TokenRevoked = "token.revoked", "Tokens", "API token revoked";
    TokenExpired = "token.expired", "Tokens", "API token expired";
    TokenRejected = "token.rejected", "Security", "Request with an unknown, revoked or expired token refused";
    ScimUserProvisioned = "scim.user_provisioned", "Provisioning", "Person provisioned by the identity provider";
    ScimUserChanged = "scim.user_changed", "Provisioning", "Provisioned person's details changed";
    ScimUserDeprovisioned = "scim.user_deprovisioned", "Provisioning", "Person deprovisioned by the identity provider";
    ScimUserDeleted = "scim.user_deleted", "Provisioning", "Provisioned person deleted";
    ScimGroupChanged = "scim.group_changed", "Provisioning", "Provisioned group changed";
    ScimMappingChanged = "scim.mapping_changed", "Provisioning", "Provisioning group mapping changed";
    ScimDryRun = "scim.dry_run", "Provisioning", "Provisioning dry run: what would have changed";
}

impl Action {
    /// The action a stored code stands for, legacy aliases included.
    pub fn from_code(code: &str) -> Option<Action> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.code() == code || a.legacy_codes().contains(&code))
    }

    /// Every code a filter on this action must match: its own and its legacy aliases.
    pub fn all_codes(self) -> Vec<&'static str> {
        std::iter::once(self.code())
            .chain(self.legacy_codes().iter().copied())
            .collect()
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl From<Action> for String {
    fn from(action: Action) -> String {
        action.code().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_is_unique_and_dotted() {
        let mut seen = HashSet::new();
        for action in Action::ALL {
            for code in action.all_codes() {
                assert!(seen.insert(code), "{code} is used twice");
                let (area, verb) = code.split_once('.').expect("dotted");
                assert!(!area.is_empty() && !verb.is_empty(), "{code}");
            }
        }
    }

    #[test]
    fn the_old_offboarding_code_is_the_same_action_as_the_workspace_page_code() {
        assert_eq!(
            Action::from_code("workspace.member_removed"),
            Some(Action::WorkspaceMemberRemoved)
        );
        assert_eq!(
            Action::WorkspaceMemberRemoved.all_codes(),
            vec!["workspace_member.removed", "workspace.member_removed"]
        );
    }
}
