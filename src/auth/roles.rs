//! Roles and the one table that maps each role to what it may do.
//!
//! Every route checks a [`Permission`] on the server; pages only hide what the role cannot do.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Admin,
    Viewer,
    TeamLead,
    Auditor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Organization-wide reading: all members, invites, the overview's org-wide numbers.
    ViewDirectory,
    /// Workspaces, their members and keys. Team leads get it limited to their workspaces.
    ViewWorkspaces,
    /// Usage and cost. Team leads get it limited to their workspaces.
    ViewUsage,
    /// Every change to the organization through the Admin API.
    ManageOrganization,
    /// The audit log.
    ViewAudit,
    /// Dashboard accounts: create, change role, disable, reset passwords, clear lockouts.
    ManageAccounts,
}

use Permission::*;

impl Permission {
    /// Whether it changes anything (a read-only token never has it).
    pub fn is_change(self) -> bool {
        matches!(self, ManageOrganization | ManageAccounts)
    }

    /// Whether it reaches the whole organization at once, so a caller narrowed to some
    /// workspaces never has it (their changes are checked against their workspaces).
    pub fn is_organization_wide(self) -> bool {
        matches!(self, ViewDirectory | ViewAudit | ManageAccounts)
    }
}

/// The single role → permission table.
const TABLE: &[(Role, &[Permission])] = &[
    (
        Role::Owner,
        &[
            ViewDirectory,
            ViewWorkspaces,
            ViewUsage,
            ManageOrganization,
            ViewAudit,
            ManageAccounts,
        ],
    ),
    (
        Role::Admin,
        &[
            ViewDirectory,
            ViewWorkspaces,
            ViewUsage,
            ManageOrganization,
            ViewAudit,
        ],
    ),
    (Role::Viewer, &[ViewDirectory, ViewWorkspaces, ViewUsage]),
    (Role::TeamLead, &[ViewWorkspaces, ViewUsage]),
    (
        Role::Auditor,
        &[ViewDirectory, ViewWorkspaces, ViewUsage, ViewAudit],
    ),
];

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Viewer,
        Role::TeamLead,
        Role::Auditor,
    ];

    pub fn can(self, permission: Permission) -> bool {
        TABLE
            .iter()
            .find(|(role, _)| *role == self)
            .is_some_and(|(_, permissions)| permissions.contains(&permission))
    }

    /// Team leads only ever see the workspaces assigned to their account.
    pub fn is_workspace_scoped(self) -> bool {
        self == Role::TeamLead
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::TeamLead => "team_lead",
            Role::Auditor => "auditor",
        }
    }

    /// Plain words for the accounts page.
    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Viewer => "Viewer",
            Role::TeamLead => "Team lead",
            Role::Auditor => "Auditor",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Role::Owner => "Everything, including managing dashboard accounts",
            Role::Admin => "Every organization action and the audit log",
            Role::Viewer => "Reads the whole organization, changes nothing",
            Role::TeamLead => "Reads only the workspaces assigned to the account",
            Role::Auditor => "Reviews the audit log and reads the organization",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?}: expected one of owner, admin, viewer, team_lead, auditor"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owners_manage_accounts() {
        for role in Role::ALL {
            assert_eq!(role.can(ManageAccounts), role == Role::Owner, "{role}");
        }
    }

    #[test]
    fn only_owners_and_admins_change_the_organization() {
        for role in Role::ALL {
            let expected = matches!(role, Role::Owner | Role::Admin);
            assert_eq!(role.can(ManageOrganization), expected, "{role}");
        }
    }

    #[test]
    fn viewers_and_team_leads_cannot_read_the_audit_log() {
        assert!(!Role::Viewer.can(ViewAudit));
        assert!(!Role::TeamLead.can(ViewAudit));
        assert!(Role::Auditor.can(ViewAudit));
    }

    #[test]
    fn team_leads_do_not_see_the_org_wide_directory() {
        assert!(!Role::TeamLead.can(ViewDirectory));
        assert!(Role::TeamLead.can(ViewWorkspaces));
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
