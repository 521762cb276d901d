//! What the dashboard keeps in a session, and signing in and out.
//!
//! Sessions live in SQLite (tower-sessions), so they survive a restart. Each session records
//! the account's `session_epoch` at sign-in: bumping the epoch (password change, disable, role
//! change, "end sessions") invalidates every session of that account at its next request.

use chrono::{DateTime, Utc};
use rand::RngCore;
use tower_sessions::Session;

use super::accounts::Account;

const ACCOUNT_ID: &str = "account_id";
const EPOCH: &str = "epoch";
const SIGNED_IN_AT: &str = "signed_in_at";
const LAST_SEEN: &str = "last_seen";
/// `last_seen` is rewritten at most this often, so a page view is not a session write.
const LAST_SEEN_GRANULARITY: i64 = 30;
const CSRF: &str = "csrf";

/// The signed-in account as recorded in the session.
pub struct SessionLogin {
    pub account_id: i64,
    pub epoch: i64,
    /// Unix seconds; sessions older than the absolute lifetime are refused.
    pub signed_in_at: i64,
    /// Unix seconds of the last request (to within [`LAST_SEEN_GRANULARITY`]).
    pub last_seen: Option<i64>,
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub async fn login_of(session: &Session) -> Option<SessionLogin> {
    Some(SessionLogin {
        account_id: session.get(ACCOUNT_ID).await.ok()??,
        epoch: session.get(EPOCH).await.ok()??,
        signed_in_at: session.get(SIGNED_IN_AT).await.ok()??,
        last_seen: session.get(LAST_SEEN).await.ok().flatten(),
    })
}

/// Records activity at `now` (Unix seconds) unless it was recorded very recently.
pub async fn touch(session: &Session, login: &SessionLogin, now: i64) {
    if login
        .last_seen
        .is_some_and(|seen| now - seen < LAST_SEEN_GRANULARITY)
    {
        return;
    }
    if let Err(error) = session.insert(LAST_SEEN, now).await {
        tracing::warn!(%error, "could not record session activity");
    }
}

/// Signs in: a new session id (no fixation), a new CSRF token.
pub async fn sign_in(
    session: &Session,
    account: &Account,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    session.cycle_id().await?;
    session.insert(ACCOUNT_ID, account.id).await?;
    session.insert(EPOCH, account.session_epoch).await?;
    session.insert(SIGNED_IN_AT, now.timestamp()).await?;
    session.insert(LAST_SEEN, now.timestamp()).await?;
    session.insert(CSRF, random_token()).await?;
    Ok(())
}

pub async fn sign_out(session: &Session) -> anyhow::Result<()> {
    session.flush().await?;
    Ok(())
}

/// The session's CSRF token, created on first use (the sign-in form needs one too).
pub async fn csrf_token(session: &Session) -> anyhow::Result<String> {
    if let Some(token) = session.get::<String>(CSRF).await? {
        return Ok(token);
    }
    let token = random_token();
    session.insert(CSRF, token.clone()).await?;
    Ok(token)
}

pub async fn stored_csrf_token(session: &Session) -> Option<String> {
    session.get::<String>(CSRF).await.ok().flatten()
}
