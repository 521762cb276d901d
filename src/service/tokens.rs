//! API tokens: who may create and revoke them, their bounds, and the door they open. A token
//! never has more than its account: the account's role and workspaces are read at each use,
//! so demoting or disabling the account, or taking a workspace away, narrows or stops its
//! tokens at once. SCIM tokens belong to no account; owners create them for an identity
//! provider.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{target, Caller, ServiceError, Services};
use crate::audit::{Action, NewEntry, Source, Target};
use crate::auth::accounts::{self, Account};
use crate::auth::tokens::{self, Token, TokenKind, TokenSecret};
use crate::auth::{Permission, Role};

/// Days a token lives when nobody says otherwise.
pub const DEFAULT_DAYS: u32 = 90;
/// The longest a token may live, unless an owner's never expires.
pub const MAX_DAYS: u32 = 365;
/// The longest name.
pub const MAX_NAME: usize = 64;
/// How often a token's last use is written down (at most once a minute per token).
const USE_GRANULARITY: Duration = Duration::seconds(60);

/// A token to create.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub name: String,
    pub kind: TokenKind,
    /// Whose, for an `api` token.
    pub account: Option<Account>,
    pub read_only: bool,
    /// Narrowed to these workspaces (empty: all its account may read).
    pub workspaces: Vec<String>,
    /// `None`: never expires (owners only).
    pub expires_in_days: Option<u32>,
}

/// A token just made, with its secret: shown once, never stored.
pub struct Created {
    pub token: Token,
    pub secret: TokenSecret,
}

pub fn token_target(token: &Token) -> Option<Target> {
    target("token", token.id.to_string(), Some(token.name.clone()))
}

/// Whether the caller may create or revoke tokens of `account` (`None`: SCIM tokens): their
/// own, or anyone's for owners and the command line.
fn may_manage(caller: &Caller, account: Option<&Account>) -> bool {
    if caller.can(Permission::ManageAccounts) && !matches!(caller, Caller::Token { .. }) {
        return true;
    }
    match (caller, account) {
        (Caller::Person { account: me, .. }, Some(account)) => me.id == account.id,
        _ => false,
    }
}

/// The rules a new token must meet; the sentence says which one it does not.
fn check(services: &Services, new: &NewToken) -> Result<(String, Option<Vec<String>>), String> {
    let name = new.name.trim();
    if name.is_empty() {
        return Err("Give the token a name that says what uses it, for example ci-deploy.".into());
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(format!(
            "Keep the name to {MAX_NAME} characters, without line breaks."
        ));
    }
    let owner = match &new.account {
        Some(account) => account.role == Role::Owner,
        None => true,
    };
    match new.expires_in_days {
        None if !owner => {
            return Err("Only owners' tokens may never expire: choose a number of days.".into())
        }
        Some(days) if days == 0 || days > MAX_DAYS => {
            return Err(format!("A token lives between 1 and {MAX_DAYS} days."))
        }
        _ => {}
    }
    let workspaces: Vec<String> = new
        .workspaces
        .iter()
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty())
        .collect();
    if workspaces.is_empty() {
        return Ok((name.to_owned(), None));
    }
    let Some(account) = &new.account else {
        return Err("A SCIM token acts for the whole organization: it has no workspaces.".into());
    };
    let snapshot = services.org.snapshot();
    for id in &workspaces {
        let known = snapshot
            .workspaces
            .iter()
            .any(|w| &w.id == id && !w.is_archived());
        if !known {
            return Err(format!("There is no active workspace with the id {id}."));
        }
        if !account.may_reach_workspace(id) {
            return Err(format!(
                "{} cannot read the workspace {id}, so a token of theirs cannot either.",
                account.username
            ));
        }
    }
    let mut unique = workspaces;
    unique.sort();
    unique.dedup();
    Ok((name.to_owned(), Some(unique)))
}

/// Creates a token: the secret is in the answer and nowhere else.
pub async fn create(
    services: &Services,
    caller: &Caller,
    new: NewToken,
) -> Result<Created, ServiceError> {
    if (new.kind == TokenKind::Api) != new.account.is_some() {
        return Err(ServiceError::Invalid(
            "An API token belongs to an account; a SCIM token to none.".into(),
        ));
    }
    if !may_manage(caller, new.account.as_ref()) {
        let who = new.account.as_ref().and_then(super::accounts::target);
        let why = json!({ "reason": "only owners create tokens for others, and SCIM tokens" });
        return Err(services.deny(caller, who, why).await);
    }
    if new.account.as_ref().is_some_and(|a| a.disabled) {
        return Err(ServiceError::Invalid(
            "The account is disabled: its tokens would not work.".into(),
        ));
    }
    let (name, workspaces) = check(services, &new).map_err(ServiceError::Invalid)?;
    let now = services.clock.now();
    let expires_at = new
        .expires_in_days
        .map(|days| now + Duration::days(i64::from(days)));
    let secret = TokenSecret::generate(new.kind);
    let details = json!({
        "kind": new.kind.as_str(),
        "account": new.account.as_ref().map(|a| &a.username),
        "read_only": new.read_only,
        "workspaces": workspaces,
        "expires_at": expires_at,
        "hint": secret.hint(),
    });
    let created_by = caller.name();
    let stored = tokens::NewToken {
        name: &name,
        kind: new.kind,
        account_id: new.account.as_ref().map(|a| a.id),
        read_only: new.read_only,
        workspaces: workspaces.as_deref(),
        created_by: &created_by,
        expires_at,
    };
    let insert = async {
        tokens::insert(&services.db, &stored, &secret, now)
            .await
            .map_err(|e| {
                if tokens::name_taken(&e) {
                    TokenRefusal::NameTaken(name.clone())
                } else {
                    TokenRefusal::Database(e)
                }
            })
    };
    let token = services
        .local_change(
            caller,
            Action::TokenCreated,
            target("token", "new", Some(name.clone())),
            details,
            insert,
            token_target,
        )
        .await?
        .map_err(ServiceError::from)?;
    Ok(Created { token, secret })
}

/// Why a token change was refused by a rule.
#[derive(Debug, thiserror::Error)]
enum TokenRefusal {
    #[error("A token named {0} already exists: choose another name, or revoke that one first.")]
    NameTaken(String),
    #[error("That token is already revoked.")]
    AlreadyRevoked,
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<TokenRefusal> for ServiceError {
    /// A rule's refusal is a sentence for the person; the database's failure stays one.
    fn from(refusal: TokenRefusal) -> ServiceError {
        match refusal {
            TokenRefusal::Database(e) => ServiceError::Database(e),
            refusal => ServiceError::Invalid(refusal.to_string()),
        }
    }
}

impl super::LocalRefusal for TokenRefusal {
    fn outcome(&self) -> crate::audit::Outcome {
        match self {
            TokenRefusal::Database(_) => crate::audit::Outcome::Failed,
            _ => crate::audit::Outcome::Denied,
        }
    }
}

/// Revokes a token at once: its next request is refused.
pub async fn revoke(
    services: &Services,
    caller: &Caller,
    token: &Token,
) -> Result<(), ServiceError> {
    let account = match token.account_id {
        Some(id) => accounts::find_by_id(&services.db, id).await?,
        None => None,
    };
    if !may_manage(caller, account.as_ref()) {
        let why = json!({ "reason": "only owners revoke others' tokens" });
        return Err(services.deny(caller, token_target(token), why).await);
    }
    let now = services.clock.now();
    let by = caller.name();
    let change = async {
        match tokens::revoke(&services.db, token.id, &by, now).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(TokenRefusal::AlreadyRevoked),
            Err(e) => Err(TokenRefusal::Database(e)),
        }
    };
    services
        .local_change(
            caller,
            Action::TokenRevoked,
            token_target(token),
            json!({ "kind": token.kind.as_str(), "hint": token.hint }),
            change,
            |_| None,
        )
        .await?
        .map_err(ServiceError::from)
}

// ---- Reads ----

/// One token, if the caller may see it (their own; owners any).
pub async fn find(services: &Services, caller: &Caller, id: i64) -> Result<Token, ServiceError> {
    let token = tokens::find(&services.db, id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let account = match token.account_id {
        Some(id) => accounts::find_by_id(&services.db, id).await?,
        None => None,
    };
    if may_manage(caller, account.as_ref()) {
        Ok(token)
    } else {
        Err(ServiceError::NotFound)
    }
}

/// The live token with this name (the command line names tokens).
pub async fn find_by_name(services: &Services, name: &str) -> Result<Token, ServiceError> {
    tokens::find_live_by_name(&services.db, name)
        .await?
        .ok_or(ServiceError::NotFound)
}

/// An account's tokens, newest first.
pub async fn of_account(
    services: &Services,
    account: &Account,
) -> Result<Vec<Token>, ServiceError> {
    Ok(tokens::of_account(&services.db, account.id).await?)
}

/// Every token of a kind (SCIM tokens for their page).
pub async fn of_kind(services: &Services, kind: TokenKind) -> Result<Vec<Token>, ServiceError> {
    Ok(tokens::of_kind(&services.db, kind).await?)
}

/// Every token (the command line's list), newest first, with their accounts' names.
pub async fn all(services: &Services) -> Result<Vec<(Token, Option<String>)>, ServiceError> {
    let names: HashMap<i64, String> = accounts::list(&services.db)
        .await?
        .into_iter()
        .map(|a| (a.id, a.username))
        .collect();
    Ok(tokens::all(&services.db)
        .await?
        .into_iter()
        .map(|t| {
            let name = t.account_id.and_then(|id| names.get(&id).cloned());
            (t, name)
        })
        .collect())
}

// ---- The door ----

/// Why a request's token was refused (401).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// No token in the request.
    Missing,
    /// No token has this secret.
    Unknown,
    Revoked,
    Expired,
    /// Its account is disabled, or gone.
    AccountDisabled,
    /// A SCIM token on the Admin API or an API token on SCIM.
    WrongKind,
}

impl Rejection {
    /// What the caller reads (and the audit record's reason).
    pub fn message(self) -> &'static str {
        match self {
            Rejection::Missing => "No token: send an Orgkeeper token in the x-api-key header or as Authorization: Bearer.",
            Rejection::Unknown => "This token is not valid.",
            Rejection::Revoked => "This token has been revoked.",
            Rejection::Expired => "This token has expired.",
            Rejection::AccountDisabled => "The account this token belongs to is disabled.",
            Rejection::WrongKind => "This token is not for this interface.",
        }
    }
}

/// The caller a presented token stands for, or why not (the refusal is recorded, under flood
/// control: anyone can send a request).
pub async fn authenticate(
    services: &Services,
    presented: Option<&str>,
    kind: TokenKind,
    source: &Source,
) -> Result<Result<Caller, Rejection>, ServiceError> {
    let decided = decide(services, presented, kind, source).await?;
    if let Err(rejection) = &decided {
        if *rejection != Rejection::Missing {
            let entry = NewEntry::new(
                crate::audit::Actor::named("(unknown)"),
                source.clone(),
                Action::TokenRejected,
                crate::audit::Outcome::Denied,
            )
            .details(json!({ "reason": rejection.message(), "interface": kind.as_str() }));
            services
                .record_refusal(super::refusals::Refused::Token, entry)
                .await?;
        }
    }
    Ok(decided)
}

async fn decide(
    services: &Services,
    presented: Option<&str>,
    kind: TokenKind,
    source: &Source,
) -> Result<Result<Caller, Rejection>, ServiceError> {
    let Some(presented) = presented.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(Err(Rejection::Missing));
    };
    let secret = TokenSecret::presented(presented);
    let Some(token) = tokens::find_by_secret(&services.db, &secret).await? else {
        return Ok(Err(Rejection::Unknown));
    };
    let now = services.clock.now();
    if token.is_revoked() {
        return Ok(Err(Rejection::Revoked));
    }
    if token.is_expired(now) {
        return Ok(Err(Rejection::Expired));
    }
    if token.kind != kind {
        return Ok(Err(Rejection::WrongKind));
    }
    if token
        .last_used_at
        .is_none_or(|at| now - at >= USE_GRANULARITY || at > now)
    {
        tokens::record_use(&services.db, token.id, source.ip.as_deref(), now).await?;
    }
    let token = Arc::new(token);
    Ok(match token.account_id {
        None => Ok(Caller::Scim {
            token,
            source: source.clone(),
        }),
        Some(id) => match accounts::find_by_id(&services.db, id).await? {
            Some(account) if !account.disabled => {
                Ok(Caller::with_token(account, token, source.clone()))
            }
            _ => Err(Rejection::AccountDisabled),
        },
    })
}

/// Records each token that expired since the last round, once (the scheduler's job).
pub async fn record_expired(
    services: &Services,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    let expired = tokens::newly_expired(&services.db, now).await?;
    for token in &expired {
        services
            .record(
                &Caller::SCHEDULER,
                Action::TokenExpired,
                token_target(token),
                json!({ "kind": token.kind.as_str(), "expires_at": token.expires_at }),
                crate::audit::Outcome::Ok,
            )
            .await?;
        tokens::mark_expiry_recorded(&services.db, token.id).await?;
    }
    Ok(expired.len())
}

/// Requests per token per minute (a fixed one-minute window on the dashboard's clock).
#[derive(Default)]
pub struct RateLimit {
    windows: Mutex<HashMap<i64, (DateTime<Utc>, u32)>>,
}

impl RateLimit {
    /// Counts one request of `token`; `Err(seconds)` to wait when over `per_minute` (0: no
    /// limit).
    pub fn admit(&self, token: i64, per_minute: u32, now: DateTime<Utc>) -> Result<(), u64> {
        if per_minute == 0 {
            return Ok(());
        }
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        // Forget finished windows now and then, so the map holds only active tokens.
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now - *start < Duration::minutes(1));
        }
        let (start, count) = windows.entry(token).or_insert((now, 0));
        if now - *start >= Duration::minutes(1) || *start > now {
            *start = now;
            *count = 0;
        }
        if *count >= per_minute {
            let wait = 60 - (now - *start).num_seconds().clamp(0, 59);
            return Err(wait as u64);
        }
        *count += 1;
        Ok(())
    }
}
