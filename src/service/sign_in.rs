//! Signing in and out: with a password, or as someone the identity provider vouched for
//! (OpenID Connect, a trusted proxy). The rules — throttles, lockouts, who may use a password,
//! what a person's groups are worth — and the audit records of every outcome live here; the
//! web layer only carries the session (see `web::login`, `web::sso`).
//!
//! Failed sign-ins can come from anyone, so they pass the flood control of refused requests
//! (`Refused::SignIn`): a few per address and minute one by one, the rest counted.

use serde_json::json;

use super::refusals::Refused;
use super::{sso, Caller, ServiceError, Services};
use crate::audit::{Action, Actor, NewEntry, Outcome, Source};
use crate::auth::accounts::{self, Account};
use crate::auth::sso::{Identity, Provisioned};
use crate::auth::{password, Role};

/// Consecutive failures that lock an account, and for how long.
pub const MAX_FAILURES: i64 = 5;
pub const LOCK_MINUTES: i64 = 15;

/// Why a password sign-in was refused; each says the same to everyone, so a refusal does not
/// reveal whether a name exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordRefusal {
    /// Wrong name or password, or a disabled account.
    Invalid,
    /// Too many failures from this address, for this name, or the account is locked.
    Throttled,
    /// Passwords are off and this is not the break-glass owner.
    PasswordsOff,
}

impl PasswordRefusal {
    pub fn message(self) -> &'static str {
        match self {
            PasswordRefusal::Invalid => "Invalid username or password.",
            PasswordRefusal::Throttled => "Too many failed sign-ins. Wait 15 minutes and try again, or ask an owner to unlock the account.",
            PasswordRefusal::PasswordsOff => {
                "Password sign-in is turned off. Use the single sign-on button above."
            }
        }
    }
}

fn anonymous(name: &str) -> Actor {
    Actor::named(name.chars().take(64).collect::<String>())
}

fn person(account: &Account) -> Actor {
    Actor::account(account.id, &account.username, account.role.as_str())
}

/// Records a failed sign-in of any kind (password, provider, proxy) under flood control.
pub async fn record_failure(
    services: &Services,
    source: &Source,
    actor: Actor,
    details: serde_json::Value,
    outcome: Outcome,
) -> Result<(), ServiceError> {
    let entry =
        NewEntry::new(actor, source.clone(), Action::AuthLoginFailed, outcome).details(details);
    services.record_refusal(Refused::SignIn, entry).await?;
    Ok(())
}

/// Records a trusted proxy's identity header that was refused (from an untrusted address, or
/// repeated), under flood control: anyone can send one.
pub async fn record_refused_header(
    services: &Services,
    source: &Source,
    details: serde_json::Value,
) -> Result<(), ServiceError> {
    let entry = NewEntry::new(
        Actor::named("(unknown)"),
        source.clone(),
        Action::ProxyHeaderRefused,
        Outcome::Denied,
    )
    .details(details);
    services.record_refusal(Refused::ProxyHeader, entry).await?;
    Ok(())
}

/// Signs in with a password; the caller starts the session for the account that comes back.
pub async fn with_password(
    services: &Services,
    source: &Source,
    username: &str,
    password_typed: String,
) -> Result<Result<Account, PasswordRefusal>, ServiceError> {
    let username = username.trim();
    let now = services.clock.now();
    let address = source.ip.as_deref().unwrap_or("unknown");
    let throttle = &services.throttle;
    let account = accounts::find_by_username(&services.db, username).await?;
    let actor = match &account {
        Some(account) => person(account),
        None => anonymous(username),
    };
    // An address over its allowance gets no password check at all: hashing is what a flood
    // would cost us.
    let address_throttled = throttle.ip_blocked(address, now);
    let throttled = address_throttled
        || match &account {
            Some(account) => account.is_locked(now),
            None => throttle.unknown_name_blocked(username, now),
        };
    // Otherwise verify even when locked or unknown, so the answer takes the same time either
    // way and does not tell which names exist.
    let password_ok = if address_throttled {
        false
    } else {
        let stored = match &account {
            Some(account) => Some(accounts::password_hash(&services.db, account.id).await?),
            None => None,
        };
        throttle.count_check();
        password::verify(password_typed, stored).await
    };
    let active = account.as_ref().is_some_and(|a| !a.disabled);
    // With local passwords off only the break-glass owner may use one, and only as an owner.
    let passwords_off = !services.config.sso.password_allowed_for(username)
        || (!services.config.sso.local_passwords
            && account.as_ref().is_some_and(|a| a.role != Role::Owner));

    if password_ok && active && !throttled && !passwords_off {
        let account = account.expect("checked above");
        services
            .audit
            .append(NewEntry::new(
                actor,
                source.clone(),
                Action::AuthLogin,
                Outcome::Ok,
            ))
            .await?;
        super::accounts::then_forget(
            services,
            super::accounts::Stale::Account(account.id),
            accounts::record_login(&services.db, account.id, now),
        )
        .await?;
        return Ok(Ok(account));
    }

    let (reason, refusal) = if throttled {
        ("throttled", PasswordRefusal::Throttled)
    } else if passwords_off {
        ("passwords_off", PasswordRefusal::PasswordsOff)
    } else if account.is_none() {
        ("unknown_user", PasswordRefusal::Invalid)
    } else if !active {
        ("disabled", PasswordRefusal::Invalid)
    } else {
        ("bad_password", PasswordRefusal::Invalid)
    };
    record_failure(
        services,
        source,
        actor.clone(),
        json!({ "reason": reason }),
        Outcome::Denied,
    )
    .await?;
    // Every failure counts against the address, also one refused for a locked account or a
    // throttled name: hammering from one place ends in no hashing at all.
    if !passwords_off && !address_throttled {
        throttle.record_failure(address, account.is_none().then_some(username), now);
    }
    if let (Some(account), false, false) = (&account, throttled, passwords_off) {
        let locked = super::accounts::then_forget(
            services,
            super::accounts::Stale::Account(account.id),
            accounts::record_failed_login(
                &services.db,
                account.id,
                MAX_FAILURES,
                chrono::Duration::minutes(LOCK_MINUTES),
                now,
            ),
        )
        .await?;
        if locked {
            services
                .audit
                .append(
                    NewEntry::new(
                        actor,
                        source.clone(),
                        Action::AuthLockedOut,
                        Outcome::Denied,
                    )
                    .details(json!({ "failures": MAX_FAILURES, "minutes": LOCK_MINUTES })),
                )
                .await?;
        }
    }
    Ok(Err(refusal))
}

/// What a sign-in through the identity provider comes to.
#[derive(Debug)]
pub enum IdentitySignIn {
    /// Start a session for this account.
    SignedIn(Account),
    /// None of the person's groups is mapped to a role.
    NoAccess { message: String },
    /// Refused for another reason (an owner disabled the account, the name is taken…).
    Refused { message: String },
}

/// Signs in someone the identity provider vouched for: the account is created or brought in
/// line with the mappings, and every change to it is recorded with the reason.
pub async fn with_identity(
    services: &Services,
    source: &Source,
    identity: &Identity,
) -> Result<IdentitySignIn, ServiceError> {
    let method = identity.provider;
    let groups = crate::auth::sso::groups_for_audit(&identity.groups);
    let failed = |reason: &str| json!({ "method": method, "reason": reason, "subject": identity.subject, "groups": groups });
    let now = services.clock.now();
    // Provisioning may change the account (its groups, role and workspaces).
    let provisioned = super::accounts::then_forget(
        services,
        super::accounts::Stale::Everyone,
        crate::auth::sso::provision(&services.db, identity, now),
    )
    .await?;
    match provisioned {
        Provisioned::Ready {
            account,
            created,
            change,
        } => {
            let caller = Caller::Person {
                account: account.clone(),
                source: source.clone(),
            };
            if created {
                services
                    .record(
                        &caller,
                        Action::AccountCreated,
                        super::accounts::target(&account),
                        json!({ "username": account.username, "role": account.role.as_str(),
                                "workspaces": account.workspaces, "method": method,
                                "groups": groups }),
                        Outcome::Ok,
                    )
                    .await?;
            }
            if let Some(change) = change {
                sso::record_access_changes(services, &caller, &[change], "groups at sign-in")
                    .await?;
            }
            services
                .record(
                    &caller,
                    Action::AuthLogin,
                    None,
                    json!({ "method": method, "groups": groups }),
                    Outcome::Ok,
                )
                .await?;
            super::accounts::then_forget(
                services,
                super::accounts::Stale::Account(account.id),
                accounts::record_login(&services.db, account.id, now),
            )
            .await?;
            Ok(IdentitySignIn::SignedIn(account))
        }
        Provisioned::NoAccess { lapsed } => {
            if let Some(change) = lapsed {
                let system = Caller::System {
                    name: "system (single sign-on)",
                };
                sso::record_access_changes(
                    services,
                    &system,
                    std::slice::from_ref(&change),
                    "no mapped group at sign-in",
                )
                .await?;
            }
            record_failure(
                services,
                source,
                anonymous(&identity.username),
                failed("no_mapped_group"),
                Outcome::Denied,
            )
            .await?;
            Ok(IdentitySignIn::NoAccess {
                message: format!(
                    "You are signed in at the identity provider as {}, but none of your groups gives access to Orgkeeper. Ask an owner for access: they can map one of your groups to a role on the Accounts page.",
                    identity.username
                ),
            })
        }
        Provisioned::Refused { reason, message } => {
            record_failure(
                services,
                source,
                anonymous(&identity.username),
                failed(reason),
                Outcome::Denied,
            )
            .await?;
            Ok(IdentitySignIn::Refused { message })
        }
    }
}

/// Whether the account still is this identity with these groups (then a proxy's request
/// needs no new sign-in).
pub async fn is_same_identity(services: &Services, account_id: i64, identity: &Identity) -> bool {
    crate::auth::sso::linked_identity(&services.db, account_id)
        .await
        .ok()
        .flatten()
        .is_some_and(|linked| {
            linked.provider == identity.provider
                && linked.subject == identity.subject
                && linked.groups == identity.groups
        })
}

pub async fn sign_out(services: &Services, caller: &Caller) -> Result<(), ServiceError> {
    services
        .record(caller, Action::AuthLogout, None, json!({}), Outcome::Ok)
        .await?;
    Ok(())
}
