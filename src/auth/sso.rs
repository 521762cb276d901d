//! Accounts of people who sign in through the company's identity provider (OpenID Connect or
//! a trusted proxy header): the group → role mappings owners keep, and the account each
//! identity gets from them.
//!
//! The identity provider says who someone is and which groups they are in; the mappings say
//! what that is worth here. An account is created at the first sign-in, its role and
//! workspaces follow the groups at every sign-in, and the groups seen last are kept so that a
//! mapping change applies at once: an account no mapping grants a role any more is disabled
//! (`access_lapsed`, its sessions end through the session epoch) until a mapping grants one.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Row, SqlitePool};

use super::accounts::{self, Account, AccountError};
use super::roles::Role;

/// Stored instead of a password hash: not a PHC string, so no password ever matches it.
const NO_PASSWORD: &str = "!sso";

/// Who the identity provider says this is.
#[derive(Clone, Debug)]
pub struct Identity {
    /// `oidc` or `proxy`.
    pub provider: &'static str,
    /// The provider's stable id for the person (`sub`, or the proxy header's value).
    pub subject: String,
    /// The account name to use at the first sign-in (the email address, usually).
    pub username: String,
    pub groups: Vec<String>,
}

/// Groups named one by one in an audit record; a provider can send thousands at every sign-in.
const AUDITED_GROUPS: usize = 25;
/// Characters kept of one group's name in an audit record.
const AUDITED_GROUP_CHARS: usize = 200;

/// Someone's groups as an audit record keeps them: all of them when there are few, otherwise
/// the first [`AUDITED_GROUPS`] and how many there were (`{"first": […], "total": 10000}`).
pub fn groups_for_audit(groups: &[String]) -> serde_json::Value {
    let named: Vec<String> = groups
        .iter()
        .take(AUDITED_GROUPS)
        .map(|g| g.chars().take(AUDITED_GROUP_CHARS).collect())
        .collect();
    if groups.len() <= AUDITED_GROUPS {
        json!(named)
    } else {
        json!({ "first": named, "total": groups.len() })
    }
}

#[derive(Clone, Debug)]
pub struct GroupMapping {
    pub id: i64,
    pub group_name: String,
    pub role: Role,
    pub workspaces: Vec<String>,
    pub enabled: bool,
}

impl GroupMapping {
    /// Before/after form for the audit log.
    pub fn details(&self) -> serde_json::Value {
        json!({
            "group": self.group_name,
            "role": self.role.as_str(),
            "workspaces": self.workspaces,
            "enabled": self.enabled,
        })
    }
}

/// What the mappings grant someone in these groups.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub role: Role,
    /// For team leads: every workspace of every matching team-lead mapping.
    pub workspaces: Vec<String>,
}

/// Most powerful first: someone in several mapped groups gets the strongest role.
const PRECEDENCE: [Role; 5] = [
    Role::Owner,
    Role::Admin,
    Role::Auditor,
    Role::Viewer,
    Role::TeamLead,
];

/// The role (and team-lead workspaces) that the enabled mappings give these groups.
pub fn grant_for(mappings: &[GroupMapping], groups: &[String]) -> Option<Grant> {
    let matching: Vec<&GroupMapping> = mappings
        .iter()
        .filter(|m| m.enabled && groups.contains(&m.group_name))
        .collect();
    let role = PRECEDENCE
        .into_iter()
        .find(|role| matching.iter().any(|m| m.role == *role))?;
    let mut workspaces: Vec<String> = if role.is_workspace_scoped() {
        matching
            .iter()
            .filter(|m| m.role == role)
            .flat_map(|m| m.workspaces.iter().cloned())
            .collect()
    } else {
        Vec::new()
    };
    workspaces.sort();
    workspaces.dedup();
    Some(Grant { role, workspaces })
}

fn mapping_from_row(row: sqlx::sqlite::SqliteRow) -> Result<GroupMapping, AccountError> {
    let role: String = row.get("role");
    let workspaces: String = row.get("workspaces");
    Ok(GroupMapping {
        id: row.get("id"),
        group_name: row.get("group_name"),
        role: role.parse().map_err(AccountError::Invalid)?,
        workspaces: serde_json::from_str(&workspaces).unwrap_or_default(),
        enabled: row.get("enabled"),
    })
}

pub async fn list_mappings(pool: &SqlitePool) -> Result<Vec<GroupMapping>, AccountError> {
    sqlx::query("SELECT id, group_name, role, workspaces, enabled FROM sso_group_mappings ORDER BY group_name")
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(mapping_from_row)
        .collect()
}

pub async fn find_mapping(
    pool: &SqlitePool,
    id: i64,
) -> Result<Option<GroupMapping>, AccountError> {
    sqlx::query(
        "SELECT id, group_name, role, workspaces, enabled FROM sso_group_mappings WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(mapping_from_row)
    .transpose()
}

/// One account whose role or access a mapping change altered (for the audit log).
#[derive(Clone, Debug)]
pub struct AccessChange {
    pub account: Account,
    /// `None`: no role any more (the account is disabled).
    pub after: Option<Grant>,
}

/// A mapping change as the accounts see it: the accounts it altered.
pub type Applied = Vec<AccessChange>;

pub async fn add_mapping(
    pool: &SqlitePool,
    group: &str,
    role: Role,
    workspaces: &[String],
    now: DateTime<Utc>,
) -> Result<Applied, AccountError> {
    let group = group.trim();
    if group.is_empty() || group.len() > 256 || group.chars().any(char::is_control) {
        return Err(AccountError::Invalid(
            "A group is 1 to 256 characters, as the identity provider sends it.".into(),
        ));
    }
    let workspaces = if role.is_workspace_scoped() {
        workspaces.to_vec()
    } else {
        Vec::new()
    };
    sqlx::query("INSERT INTO sso_group_mappings (group_name, role, workspaces, created_at) VALUES (?, ?, ?, ?)")
        .bind(group)
        .bind(role.as_str())
        .bind(serde_json::to_string(&workspaces).expect("strings serialize"))
        .bind(now)
        .execute(pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) if db.is_unique_violation() => AccountError::Invalid(format!(
                "The group {group:?} is already mapped. Remove that mapping first to change it."
            )),
            other => other.into(),
        })?;
    apply_mappings(pool).await
}

pub async fn set_mapping_enabled(
    pool: &SqlitePool,
    id: i64,
    enabled: bool,
) -> Result<Applied, AccountError> {
    sqlx::query("UPDATE sso_group_mappings SET enabled = ? WHERE id = ?")
        .bind(enabled)
        .bind(id)
        .execute(pool)
        .await?;
    apply_mappings(pool).await
}

pub async fn remove_mapping(pool: &SqlitePool, id: i64) -> Result<Applied, AccountError> {
    sqlx::query("DELETE FROM sso_group_mappings WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    apply_mappings(pool).await
}

/// Brings every identity-provider account in line with the mappings, from the groups seen at
/// its last sign-in. Accounts an owner disabled stay as they are.
async fn apply_mappings(pool: &SqlitePool) -> Result<Applied, AccountError> {
    let mappings = list_mappings(pool).await?;
    let rows = sqlx::query(
        "SELECT i.account_id, i.groups FROM account_identities i JOIN accounts a ON a.id = i.account_id WHERE a.disabled = 0 OR a.access_lapsed = 1",
    )
    .fetch_all(pool)
    .await?;
    let mut changes = Vec::new();
    for row in rows {
        let groups: Vec<String> =
            serde_json::from_str(row.get::<String, _>("groups").as_str()).unwrap_or_default();
        let Some(account) = accounts::find_by_id(pool, row.get("account_id")).await? else {
            continue;
        };
        let grant = grant_for(&mappings, &groups);
        if let Some(change) = apply_grant(pool, &account, grant.as_ref()).await? {
            changes.push(change);
        }
    }
    Ok(changes)
}

/// Gives the account what the grant says (or disables it when there is none); `None` when
/// nothing changed. A change ends the account's sessions.
async fn apply_grant(
    pool: &SqlitePool,
    account: &Account,
    grant: Option<&Grant>,
) -> Result<Option<AccessChange>, AccountError> {
    let unchanged = match grant {
        Some(grant) => {
            !account.disabled
                && account.role == grant.role
                && account.workspaces == grant.workspaces
        }
        None => account.disabled,
    };
    if unchanged {
        return Ok(None);
    }
    let mut tx = crate::db::write_tx(pool).await?;
    match grant {
        None => {
            sqlx::query("UPDATE accounts SET disabled = 1, access_lapsed = 1, session_epoch = session_epoch + 1 WHERE id = ?")
                .bind(account.id)
                .execute(&mut *tx)
                .await?;
        }
        Some(grant) => {
            sqlx::query("UPDATE accounts SET role = ?, disabled = 0, access_lapsed = 0, session_epoch = session_epoch + 1 WHERE id = ?")
                .bind(grant.role.as_str())
                .bind(account.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM account_workspaces WHERE account_id = ?")
                .bind(account.id)
                .execute(&mut *tx)
                .await?;
            for workspace in &grant.workspaces {
                sqlx::query(
                    "INSERT INTO account_workspaces (account_id, workspace_id) VALUES (?, ?)",
                )
                .bind(account.id)
                .bind(workspace)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(Some(AccessChange {
        account: account.clone(),
        after: grant.cloned(),
    }))
}

/// The identity an account belongs to, with the groups seen at its last sign-in.
pub async fn linked_identity(
    pool: &SqlitePool,
    account_id: i64,
) -> Result<Option<Identity>, AccountError> {
    let row = sqlx::query(
        "SELECT i.provider, i.subject, i.groups, a.username FROM account_identities i JOIN accounts a ON a.id = i.account_id WHERE i.account_id = ?",
    )
    .bind(account_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| Identity {
        provider: match row.get::<String, _>("provider").as_str() {
            "oidc" => "oidc",
            _ => "proxy",
        },
        subject: row.get("subject"),
        username: row.get("username"),
        groups: serde_json::from_str(row.get::<String, _>("groups").as_str()).unwrap_or_default(),
    }))
}

/// What a sign-in through the identity provider comes to.
#[derive(Debug)]
pub enum Provisioned {
    /// Sign this account in. `change` says what the groups altered (role, access).
    Ready {
        account: Account,
        created: bool,
        change: Option<AccessChange>,
    },
    /// No enabled mapping grants any of the person's groups a role; `lapsed` is the account
    /// that just lost its access, if there was one.
    NoAccess { lapsed: Option<AccessChange> },
    /// Refused for another reason (an owner disabled the account, the name is taken…).
    Refused {
        reason: &'static str,
        message: String,
    },
}

/// Finds or creates the identity's account and gives it what its groups are worth now.
pub async fn provision(
    pool: &SqlitePool,
    identity: &Identity,
    now: DateTime<Utc>,
) -> Result<Provisioned, AccountError> {
    let mappings = list_mappings(pool).await?;
    let grant = grant_for(&mappings, &identity.groups);
    let groups = serde_json::to_string(&identity.groups).expect("strings serialize");
    let linked: Option<i64> = sqlx::query_scalar(
        "SELECT account_id FROM account_identities WHERE provider = ? AND subject = ?",
    )
    .bind(identity.provider)
    .bind(&identity.subject)
    .fetch_optional(pool)
    .await?;

    let Some(account_id) = linked else {
        let Some(grant) = grant else {
            return Ok(Provisioned::NoAccess { lapsed: None });
        };
        let username = identity.username.to_lowercase();
        if accounts::check_username(&username).is_err() {
            return Ok(Provisioned::Refused {
                reason: "unusable_name",
                message: format!("The identity provider's name for you ({username:?}) cannot be an Orgkeeper account name (letters, digits, dots, dashes, underscores or @, at most 64)."),
            });
        }
        if accounts::find_by_username(pool, &username).await?.is_some() {
            return Ok(Provisioned::Refused {
                reason: "name_taken",
                message: format!("An Orgkeeper account named {username} already exists and does not belong to single sign-on. Ask an owner to rename or remove it."),
            });
        }
        let mut tx = crate::db::write_tx(pool).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (username, role, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(&username)
        .bind(grant.role.as_str())
        .bind(NO_PASSWORD)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        for workspace in &grant.workspaces {
            sqlx::query("INSERT INTO account_workspaces (account_id, workspace_id) VALUES (?, ?)")
                .bind(id)
                .bind(workspace)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO account_identities (account_id, provider, subject, groups) VALUES (?, ?, ?, ?)")
            .bind(id)
            .bind(identity.provider)
            .bind(&identity.subject)
            .bind(&groups)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let account = accounts::find_by_id(pool, id)
            .await?
            .ok_or_else(|| AccountError::NotFound(username.clone()))?;
        return Ok(Provisioned::Ready {
            account,
            created: true,
            change: None,
        });
    };

    sqlx::query("UPDATE account_identities SET groups = ? WHERE account_id = ?")
        .bind(&groups)
        .bind(account_id)
        .execute(pool)
        .await?;
    let account = accounts::find_by_id(pool, account_id)
        .await?
        .ok_or_else(|| AccountError::NotFound(identity.username.clone()))?;
    let lapsed: bool = sqlx::query_scalar("SELECT access_lapsed FROM accounts WHERE id = ?")
        .bind(account_id)
        .fetch_one(pool)
        .await?;
    if account.disabled && !lapsed {
        return Ok(Provisioned::Refused {
            reason: "disabled",
            message: "Your Orgkeeper account is disabled. Ask an owner.".into(),
        });
    }
    let change = apply_grant(pool, &account, grant.as_ref()).await?;
    if grant.is_none() {
        return Ok(Provisioned::NoAccess { lapsed: change });
    }
    let account = accounts::find_by_id(pool, account_id)
        .await?
        .ok_or_else(|| AccountError::NotFound(identity.username.clone()))?;
    Ok(Provisioned::Ready {
        account,
        created: false,
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(group: &str, role: Role, workspaces: &[&str], enabled: bool) -> GroupMapping {
        GroupMapping {
            id: 0,
            group_name: group.into(),
            role,
            workspaces: workspaces.iter().map(|w| w.to_string()).collect(),
            enabled,
        }
    }

    #[test]
    fn the_strongest_enabled_mapping_wins_and_team_lead_workspaces_add_up() {
        let mappings = [
            mapping("leads-a", Role::TeamLead, &["wrkspc_b", "wrkspc_a"], true),
            mapping("leads-b", Role::TeamLead, &["wrkspc_c", "wrkspc_a"], true),
            mapping("audit", Role::Auditor, &[], true),
            mapping("owners", Role::Owner, &[], false),
        ];
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            grant_for(&mappings, &groups(&["leads-a", "leads-b", "other"])),
            Some(Grant {
                role: Role::TeamLead,
                workspaces: vec!["wrkspc_a".into(), "wrkspc_b".into(), "wrkspc_c".into()]
            })
        );
        assert_eq!(
            grant_for(&mappings, &groups(&["leads-a", "audit"])).map(|g| g.role),
            Some(Role::Auditor)
        );
        assert_eq!(
            grant_for(&mappings, &groups(&["owners"])),
            None,
            "a disabled mapping grants nothing"
        );
        assert_eq!(
            grant_for(&mappings, &groups(&["Audit"])),
            None,
            "groups match exactly"
        );
    }
}
