//! Local dashboard accounts: storage and the rules that protect them.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};

use super::password;
use super::roles::Role;

#[derive(Clone, Debug)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub session_epoch: i64,
    pub failed_logins: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// Upstream workspace ids a team lead may read; empty for every other role.
    pub workspaces: Vec<String>,
    /// `oidc` or `proxy` for accounts of the identity provider (no password of their own).
    pub identity_provider: Option<String>,
}

impl Account {
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }

    /// Team leads reach only their assigned workspaces; every other role reaches all of them.
    pub fn may_reach_workspace(&self, workspace_id: &str) -> bool {
        !self.role.is_workspace_scoped() || self.workspaces.iter().any(|w| w == workspace_id)
    }
}

/// Why an account change was refused. The message is shown as is.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("There is no account named {0:?}.")]
    NotFound(String),
    #[error("An account named {0:?} already exists.")]
    Duplicate(String),
    #[error("This would leave the dashboard without an active owner. Make another account an owner first.")]
    LastOwner,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub fn check_username(username: &str) -> Result<(), AccountError> {
    let valid_chars = username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if username.is_empty() || username.len() > 64 || !valid_chars {
        return Err(AccountError::Invalid(
            "A username is 1 to 64 letters, digits, dots, dashes, underscores or @.".into(),
        ));
    }
    Ok(())
}

fn check_workspace_ids(workspaces: &[String]) -> Result<(), AccountError> {
    for id in workspaces {
        let valid = !id.is_empty()
            && id.len() <= 128
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(AccountError::Invalid(format!(
                "{id:?} is not a workspace id (they look like wrkspc_01…)."
            )));
        }
    }
    Ok(())
}

const COLUMNS: &str = "id, username, role, disabled, session_epoch, failed_logins, locked_until, created_at, last_login_at, (SELECT provider FROM account_identities WHERE account_id = accounts.id) AS identity_provider, \
     (SELECT group_concat(workspace_id, ',') FROM (SELECT workspace_id FROM account_workspaces WHERE account_id = accounts.id ORDER BY workspace_id)) AS workspace_ids";

/// One row of [`COLUMNS`]; the workspaces come in the same query (one round trip per
/// request for the signed-in account).
fn from_row(row: sqlx::sqlite::SqliteRow) -> Result<Account, AccountError> {
    let id: i64 = row.get("id");
    let role: String = row.get("role");
    // Workspace ids are letters, digits and underscores (checked on the way in), so a comma
    // separates them safely.
    let workspaces = row
        .get::<Option<String>, _>("workspace_ids")
        .map(|ids| ids.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Account {
        id,
        username: row.get("username"),
        role: role.parse().map_err(AccountError::Invalid)?,
        disabled: row.get("disabled"),
        session_epoch: row.get("session_epoch"),
        failed_logins: row.get("failed_logins"),
        locked_until: row.get("locked_until"),
        created_at: row.get("created_at"),
        last_login_at: row.get("last_login_at"),
        workspaces,
        identity_provider: row.get("identity_provider"),
    })
}

pub async fn count(pool: &SqlitePool) -> Result<i64, AccountError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
        .fetch_one(pool)
        .await?)
}

pub async fn find_by_id(pool: &SqlitePool, id: i64) -> Result<Option<Account>, AccountError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM accounts WHERE id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(row) => Ok(Some(from_row(row)?)),
        None => Ok(None),
    }
}

pub async fn find_by_username(
    pool: &SqlitePool,
    username: &str,
) -> Result<Option<Account>, AccountError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM accounts WHERE username = ?"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => Ok(Some(from_row(row)?)),
        None => Ok(None),
    }
}

pub async fn get_by_username(pool: &SqlitePool, username: &str) -> Result<Account, AccountError> {
    find_by_username(pool, username)
        .await?
        .ok_or_else(|| AccountError::NotFound(username.to_owned()))
}

pub async fn list(pool: &SqlitePool) -> Result<Vec<Account>, AccountError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM accounts ORDER BY username"))
        .fetch_all(pool)
        .await?;
    let mut accounts = Vec::with_capacity(rows.len());
    for row in rows {
        accounts.push(from_row(row)?);
    }
    Ok(accounts)
}

/// The stored password hash, read only for verification.
pub async fn password_hash(pool: &SqlitePool, id: i64) -> Result<String, AccountError> {
    Ok(
        sqlx::query_scalar("SELECT password_hash FROM accounts WHERE id = ?")
            .bind(id)
            .fetch_one(pool)
            .await?,
    )
}

async fn insert_workspaces(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: i64,
    workspaces: &[String],
) -> Result<(), sqlx::Error> {
    for workspace in workspaces {
        sqlx::query(
            "INSERT OR IGNORE INTO account_workspaces (account_id, workspace_id) VALUES (?, ?)",
        )
        .bind(id)
        .bind(workspace)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub async fn create(
    pool: &SqlitePool,
    username: &str,
    role: Role,
    password: &str,
    workspaces: &[String],
    now: DateTime<Utc>,
) -> Result<Account, AccountError> {
    check_username(username)?;
    password::check_policy(password).map_err(AccountError::Invalid)?;
    check_workspace_ids(workspaces)?;
    if find_by_username(pool, username).await?.is_some() {
        return Err(AccountError::Duplicate(username.to_owned()));
    }
    let hash = password::hash(password.to_owned()).await?;
    let mut tx = crate::db::write_tx(pool).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO accounts (username, role, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(username)
    .bind(role.as_str())
    .bind(hash)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            AccountError::Duplicate(username.to_owned())
        }
        other => other.into(),
    })?;
    if role.is_workspace_scoped() {
        insert_workspaces(&mut tx, id, workspaces).await?;
    }
    tx.commit().await?;
    find_by_id(pool, id)
        .await?
        .ok_or_else(|| AccountError::NotFound(username.to_owned()))
}

/// Sets a new password and ends every session of the account.
pub async fn set_password(pool: &SqlitePool, id: i64, password: &str) -> Result<(), AccountError> {
    password::check_policy(password).map_err(AccountError::Invalid)?;
    let hash = password::hash(password.to_owned()).await?;
    sqlx::query(
        "UPDATE accounts SET password_hash = ?, session_epoch = session_epoch + 1, failed_logins = 0, locked_until = NULL WHERE id = ?",
    )
    .bind(hash)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Active owners other than `except`: the last one may not be demoted or disabled.
async fn other_active_owners(pool: &SqlitePool, except: i64) -> Result<i64, AccountError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM accounts WHERE role = 'owner' AND disabled = 0 AND id != ?",
    )
    .bind(except)
    .fetch_one(pool)
    .await?)
}

pub async fn set_role(
    pool: &SqlitePool,
    account: &Account,
    role: Role,
) -> Result<(), AccountError> {
    if account.role == Role::Owner
        && role != Role::Owner
        && !account.disabled
        && other_active_owners(pool, account.id).await? == 0
    {
        return Err(AccountError::LastOwner);
    }
    let mut tx = crate::db::write_tx(pool).await?;
    // A role change ends the account's sessions, so open pages do not keep the old powers.
    sqlx::query("UPDATE accounts SET role = ?, session_epoch = session_epoch + 1 WHERE id = ?")
        .bind(role.as_str())
        .bind(account.id)
        .execute(&mut *tx)
        .await?;
    if !role.is_workspace_scoped() {
        sqlx::query("DELETE FROM account_workspaces WHERE account_id = ?")
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn set_workspaces(
    pool: &SqlitePool,
    id: i64,
    workspaces: &[String],
) -> Result<(), AccountError> {
    check_workspace_ids(workspaces)?;
    let mut tx = crate::db::write_tx(pool).await?;
    sqlx::query("DELETE FROM account_workspaces WHERE account_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    insert_workspaces(&mut tx, id, workspaces).await?;
    tx.commit().await?;
    Ok(())
}

/// Disabling ends every session of the account; the last active owner cannot be disabled.
/// An owner's decision also replaces a lapse of single sign-on access (`access_lapsed`).
pub async fn set_disabled(
    pool: &SqlitePool,
    account: &Account,
    disabled: bool,
) -> Result<(), AccountError> {
    if disabled && account.role == Role::Owner && other_active_owners(pool, account.id).await? == 0
    {
        return Err(AccountError::LastOwner);
    }
    sqlx::query("UPDATE accounts SET disabled = ?, access_lapsed = 0, session_epoch = session_epoch + 1 WHERE id = ?")
        .bind(disabled)
        .bind(account.id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn end_sessions(pool: &SqlitePool, id: i64) -> Result<(), AccountError> {
    sqlx::query("UPDATE accounts SET session_epoch = session_epoch + 1 WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn clear_lockout(pool: &SqlitePool, id: i64) -> Result<(), AccountError> {
    sqlx::query("UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Counts a failed sign-in; locks the account for `lock_for` after `max_failures` in a row.
/// Returns true when this failure locked the account.
pub async fn record_failed_login(
    pool: &SqlitePool,
    id: i64,
    max_failures: i64,
    lock_for: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<bool, AccountError> {
    let failures: i64 = sqlx::query_scalar(
        "UPDATE accounts SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins",
    )
    .bind(id)
    .fetch_one(pool)
    .await?;
    if failures >= max_failures {
        sqlx::query("UPDATE accounts SET locked_until = ?, failed_logins = 0 WHERE id = ?")
            .bind(now + lock_for)
            .bind(id)
            .execute(pool)
            .await?;
        return Ok(true);
    }
    Ok(false)
}

pub async fn record_login(
    pool: &SqlitePool,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), AccountError> {
    sqlx::query("UPDATE accounts SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
