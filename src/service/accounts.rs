//! Orgkeeper's own accounts: every change to one, for any caller — an owner on the Accounts
//! page, the command line, the first-run setup link, a person changing their own password.
//!
//! Each change checks the caller's permission (a refusal is audited), validates, and runs
//! between an intent and an outcome record (`Services::local_change`), so no account changes
//! without a trace and a refusal by a rule (the last owner) keeps its reason.

use serde_json::json;

use super::{Caller, ServiceError, Services};
use crate::audit::{Action, Outcome, Target};
use crate::auth::accounts::{self, Account, AccountError};
use crate::auth::{password, Permission, Role};

/// An account to create.
#[derive(Clone, Debug, Default)]
pub struct NewAccount {
    pub username: String,
    pub role: Option<Role>,
    pub password: String,
    /// For a team lead: the workspaces it may read.
    pub workspaces: Vec<String>,
}

/// The last owner is protected by a rule, not by a failure: record it as denied.
impl super::LocalRefusal for AccountError {
    fn outcome(&self) -> Outcome {
        match self {
            AccountError::LastOwner => Outcome::Denied,
            _ => Outcome::Failed,
        }
    }
}

impl From<AccountError> for ServiceError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Database(e) => ServiceError::Database(e),
            AccountError::Other(e) => ServiceError::Internal(e),
            AccountError::NotFound(_) => ServiceError::NotFound,
            refusal => ServiceError::Invalid(refusal.to_string()),
        }
    }
}

pub fn target(account: &Account) -> Option<Target> {
    super::target(
        "account",
        account.id.to_string(),
        Some(account.username.clone()),
    )
}

// ---- Reads ----

pub async fn list(services: &Services) -> Result<Vec<Account>, ServiceError> {
    Ok(accounts::list(&services.db).await?)
}

pub async fn find(services: &Services, id: i64) -> Result<Account, ServiceError> {
    accounts::find_by_id(&services.db, id)
        .await?
        .ok_or(ServiceError::NotFound)
}

pub async fn find_by_name(
    services: &Services,
    username: &str,
) -> Result<Option<Account>, ServiceError> {
    Ok(accounts::find_by_username(&services.db, username).await?)
}

/// The account a session names, if it still exists: from memory, as every change through
/// this module left it (and, for a change by another process such as the command line, as
/// `account_changes` said at most `ServerConfig::accounts_recheck` ago).
pub async fn of_session(services: &Services, id: i64) -> Result<Option<Account>, ServiceError> {
    Ok(services.account_cache.get(&services.db, id).await?)
}

/// Which accounts in memory a change makes stale.
pub(super) enum Stale {
    /// The one it changed.
    Account(i64),
    /// None: it creates an account, which nobody's session names yet.
    Nobody,
    /// Any: it may change accounts it cannot name (provisioning, group mappings).
    Everyone,
}

/// Runs a change to accounts, then forgets what it made stale from memory, whatever came of
/// it: the next request reads it as the change left it. Every change to an account in this
/// layer goes through here.
pub(super) async fn then_forget<T>(
    services: &Services,
    stale: Stale,
    change: impl std::future::Future<Output = T>,
) -> T {
    let result = change.await;
    match stale {
        Stale::Account(id) => services.account_cache.forget(id),
        Stale::Nobody => {}
        Stale::Everyone => services.account_cache.forget_all(),
    }
    result
}

/// Keeps the log of account changes short (the running server reads what it has not seen).
pub async fn prune_changes(services: &Services) -> Result<u64, ServiceError> {
    Ok(crate::auth::account_cache::prune(&services.db).await?)
}

pub async fn exist(services: &Services) -> Result<bool, ServiceError> {
    Ok(accounts::count(&services.db).await? > 0)
}

// ---- Rules ----

/// Why these team-lead workspaces cannot be assigned, if they cannot: none chosen, or an id the
/// organization does not have (a typo or a forged form would otherwise replace a real
/// assignment with one that shows nothing). Without a synced model the ids are only checked
/// for their shape (the command line may run before the first sync).
pub fn check_team_lead_workspaces(
    services: &Services,
    workspaces: &[String],
) -> Result<(), ServiceError> {
    if workspaces.is_empty() {
        return Err(ServiceError::Invalid(
            "A team lead needs at least one workspace, or they would see nothing. Choose one; nothing was changed.".into(),
        ));
    }
    let Ok(known) = services.org.synced() else {
        return Ok(());
    };
    let unknown: Vec<&str> = workspaces
        .iter()
        .filter(|id| !known.workspaces.iter().any(|w| &w.id == *id))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(format!(
            "The organization has no workspace {}; nothing was changed.",
            unknown.join(", ")
        )))
    }
}

/// Runs one account change between its intent and outcome records. A rule's refusal comes
/// back as [`ServiceError::Invalid`] (already on record as denied or failed).
async fn audited<T>(
    services: &Services,
    caller: &Caller,
    action: Action,
    target: Option<Target>,
    details: serde_json::Value,
    change: impl std::future::Future<Output = Result<T, AccountError>>,
    created: impl FnOnce(&T) -> Option<Target>,
) -> Result<T, ServiceError> {
    // A change names its account; one without a target creates it.
    let stale = match target.as_ref().map(|t| t.id.parse::<i64>()) {
        Some(Ok(id)) => Stale::Account(id),
        Some(Err(_)) => Stale::Everyone,
        None => Stale::Nobody,
    };
    services
        .local_change(
            caller,
            action,
            target,
            details,
            then_forget(services, stale, change),
            created,
        )
        .await?
        .map_err(ServiceError::from)
}

/// A change an owner makes to an existing account: the permission check (a refusal is
/// audited), then the change between its intent and outcome records.
async fn manage(
    services: &Services,
    caller: &Caller,
    account: &Account,
    action: Action,
    details: serde_json::Value,
    change: impl std::future::Future<Output = Result<(), AccountError>>,
) -> Result<(), ServiceError> {
    services
        .require(caller, Permission::ManageAccounts, target(account))
        .await?;
    audited(
        services,
        caller,
        action,
        target(account),
        details,
        change,
        |_| None,
    )
    .await
}

// ---- Changes ----

/// Creates an account (owners; the command line).
pub async fn create(
    services: &Services,
    caller: &Caller,
    new: NewAccount,
) -> Result<Account, ServiceError> {
    services
        .require(caller, Permission::ManageAccounts, None)
        .await?;
    let role = new
        .role
        .ok_or_else(|| ServiceError::Invalid("Choose a role for the account.".into()))?;
    let workspaces = if role.is_workspace_scoped() {
        check_team_lead_workspaces(services, &new.workspaces)?;
        new.workspaces
    } else {
        Vec::new()
    };
    let details =
        json!({ "username": new.username, "role": role.as_str(), "workspaces": workspaces });
    let now = services.clock.now();
    audited(
        services,
        caller,
        Action::AccountCreated,
        None,
        details,
        accounts::create(
            &services.db,
            new.username.trim(),
            role,
            &new.password,
            &workspaces,
            now,
        ),
        target,
    )
    .await
}

/// The first owner, from the one-time setup link: allowed only while no account exists.
pub async fn create_first_owner(
    services: &Services,
    source: crate::audit::Source,
    username: &str,
    password: &str,
) -> Result<Account, ServiceError> {
    if exist(services).await? {
        return Err(ServiceError::Forbidden);
    }
    let account = then_forget(
        services,
        Stale::Nobody,
        accounts::create(
            &services.db,
            username.trim(),
            Role::Owner,
            password,
            &[],
            services.clock.now(),
        ),
    )
    .await?;
    let caller = Caller::Person {
        account: account.clone(),
        source,
    };
    services
        .record(
            &caller,
            Action::AuthSetupCompleted,
            target(&account),
            json!({ "role": "owner" }),
            Outcome::Ok,
        )
        .await?;
    Ok(account)
}

pub async fn change_role(
    services: &Services,
    caller: &Caller,
    account: &Account,
    role: Role,
) -> Result<(), ServiceError> {
    let details = json!({ "before": account.role.as_str(), "after": role.as_str() });
    manage(
        services,
        caller,
        account,
        Action::AccountRoleChanged,
        details,
        accounts::set_role(&services.db, account, role),
    )
    .await
}

pub async fn change_workspaces(
    services: &Services,
    caller: &Caller,
    account: &Account,
    workspaces: Vec<String>,
) -> Result<(), ServiceError> {
    services
        .require(caller, Permission::ManageAccounts, target(account))
        .await?;
    if !account.role.is_workspace_scoped() {
        return Err(ServiceError::Invalid(
            "Only team leads are limited to workspaces; other roles see the whole organization."
                .into(),
        ));
    }
    check_team_lead_workspaces(services, &workspaces)?;
    let details = json!({ "before": account.workspaces, "after": workspaces });
    audited(
        services,
        caller,
        Action::AccountWorkspacesChanged,
        target(account),
        details,
        accounts::set_workspaces(&services.db, account.id, &workspaces),
        |_| None,
    )
    .await
}

/// Disables (ending every session) or enables an account; the last active owner stays.
pub async fn set_disabled(
    services: &Services,
    caller: &Caller,
    account: &Account,
    disabled: bool,
) -> Result<(), ServiceError> {
    let action = if disabled {
        Action::AccountDisabled
    } else {
        Action::AccountEnabled
    };
    let details =
        json!({ "before": { "disabled": account.disabled }, "after": { "disabled": disabled } });
    manage(
        services,
        caller,
        account,
        action,
        details,
        accounts::set_disabled(&services.db, account, disabled),
    )
    .await
}

/// Sets someone else's password (owners; the command line) and ends their sessions.
pub async fn reset_password(
    services: &Services,
    caller: &Caller,
    account: &Account,
    password: &str,
) -> Result<(), ServiceError> {
    manage(
        services,
        caller,
        account,
        Action::AccountPasswordReset,
        json!({}),
        accounts::set_password(&services.db, account.id, password),
    )
    .await
}

pub async fn end_sessions(
    services: &Services,
    caller: &Caller,
    account: &Account,
) -> Result<(), ServiceError> {
    manage(
        services,
        caller,
        account,
        Action::AccountSessionsEnded,
        json!({}),
        accounts::end_sessions(&services.db, account.id),
    )
    .await
}

/// Clears a sign-in lockout.
pub async fn unlock(
    services: &Services,
    caller: &Caller,
    account: &Account,
) -> Result<(), ServiceError> {
    manage(
        services,
        caller,
        account,
        Action::AccountUnlocked,
        json!({ "before": { "locked_until": account.locked_until } }),
        accounts::clear_lockout(&services.db, account.id),
    )
    .await
}

/// A person changes their own password: the current one must be right and the two new ones
/// the same. Every other session of theirs ends; the account, as it is now, comes back so the
/// caller's own session can be renewed.
pub async fn change_own_password(
    services: &Services,
    caller: &Caller,
    current: String,
    new: &str,
    confirm: &str,
) -> Result<Account, ServiceError> {
    let Caller::Person { account, .. } = caller else {
        return Err(ServiceError::Forbidden);
    };
    let stored = accounts::password_hash(&services.db, account.id).await?;
    let problem = if !password::verify(current, Some(stored)).await {
        Some("Your current password is not right.".to_owned())
    } else if new != confirm {
        Some("The two new passwords are not the same.".to_owned())
    } else {
        password::check_policy(new).err()
    };
    if let Some(problem) = problem {
        services
            .record(
                caller,
                Action::AccountPasswordChanged,
                target(account),
                json!({ "reason": problem }),
                Outcome::Failed,
            )
            .await?;
        return Err(ServiceError::Invalid(problem));
    }
    audited(
        services,
        caller,
        Action::AccountPasswordChanged,
        target(account),
        json!({}),
        accounts::set_password(&services.db, account.id, new),
        |_| None,
    )
    .await?;
    find(services, account.id).await
}
