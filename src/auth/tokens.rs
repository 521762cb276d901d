//! Orgkeeper's API tokens: the secret, its hash, and their storage. The rules (who may create
//! what, expiry bounds, scope) are `crate::service::tokens`.
//!
//! A secret is 30 random bytes, base64url, behind a recognisable prefix (`orgk_` for scripts,
//! `orgk_scim_` for provisioning) so secret scanners can find a leaked one. Only its SHA-256 is
//! stored: the secret has 240 bits of entropy, so a fast hash is not reversible, and a lookup
//! by hash costs one indexed query per request.

use std::fmt;

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool};

use crate::db::ts;

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// The Admin API served by Orgkeeper, acting as the token's account.
    Api,
    /// SCIM provisioning (`/scim/v2`), acting as the identity provider.
    Scim,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Scim => "scim",
        }
    }

    fn parse(s: &str) -> TokenKind {
        if s == "scim" {
            TokenKind::Scim
        } else {
            TokenKind::Api
        }
    }

    /// The prefix of its secrets.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Api => "orgk_",
            TokenKind::Scim => "orgk_scim_",
        }
    }
}

/// A token's secret, as shown once at creation. Like the admin key, `Debug` and `Display`
/// redact it and it has no `Serialize`: the only way to read it is [`TokenSecret::expose`].
#[derive(Clone)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// A new random secret of this kind.
    pub fn generate(kind: TokenKind) -> TokenSecret {
        let mut bytes = [0u8; 30];
        rand::thread_rng().fill_bytes(&mut bytes);
        TokenSecret(format!(
            "{}{}",
            kind.prefix(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// A secret as a caller presented it (`x-api-key`, `Authorization: Bearer`).
    pub fn presented(secret: &str) -> TokenSecret {
        TokenSecret(secret.trim().to_owned())
    }

    /// The secret itself: to show once to the person who created it, and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored: the SHA-256 of the secret, in hex.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// How lists name it: the prefix and the last four characters.
    pub fn hint(&self) -> String {
        let kind = if self.0.starts_with(TokenKind::Scim.prefix()) {
            TokenKind::Scim
        } else {
            TokenKind::Api
        };
        let tail: String = self
            .0
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{}…{tail}", kind.prefix())
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret([redacted])")
    }
}

impl fmt::Display for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("orgk_…[redacted]")
    }
}

/// A stored token (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub id: i64,
    pub name: String,
    pub kind: TokenKind,
    /// Whose (`api` tokens).
    pub account_id: Option<i64>,
    pub hint: String,
    pub read_only: bool,
    /// Narrowed to these workspaces; `None`: all its account may read.
    pub workspaces: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub expiry_recorded: bool,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_from: Option<String>,
}

impl Token {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// Whether it still opens the door at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        !self.is_revoked() && !self.is_expired(now)
    }
}

/// A token to store.
pub struct NewToken<'a> {
    pub name: &'a str,
    pub kind: TokenKind,
    pub account_id: Option<i64>,
    pub read_only: bool,
    pub workspaces: Option<&'a [String]>,
    pub created_by: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, kind, account_id, hint, read_only, workspaces, created_at, \
    created_by, expires_at, revoked_at, revoked_by, expiry_recorded, last_used_at, last_used_from";

fn parse_time(raw: Option<String>) -> Option<DateTime<Utc>> {
    raw.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Token {
    let workspaces: Option<String> = row.get("workspaces");
    Token {
        id: row.get("id"),
        name: row.get("name"),
        kind: TokenKind::parse(row.get::<&str, _>("kind")),
        account_id: row.get("account_id"),
        hint: row.get("hint"),
        read_only: row.get("read_only"),
        workspaces: workspaces.and_then(|w| serde_json::from_str(&w).ok()),
        created_at: parse_time(row.get("created_at")).unwrap_or_default(),
        created_by: row.get("created_by"),
        expires_at: parse_time(row.get("expires_at")),
        revoked_at: parse_time(row.get("revoked_at")),
        revoked_by: row.get("revoked_by"),
        expiry_recorded: row.get("expiry_recorded"),
        last_used_at: parse_time(row.get("last_used_at")),
        last_used_from: row.get("last_used_from"),
    }
}

/// Whether a write failed because a live token already has the name.
pub fn name_taken(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub async fn insert(
    db: &SqlitePool,
    new: &NewToken<'_>,
    secret: &TokenSecret,
    now: DateTime<Utc>,
) -> Result<Token, sqlx::Error> {
    let workspaces = new
        .workspaces
        .map(|w| serde_json::to_string(w).unwrap_or_else(|_| "[]".into()));
    let row = sqlx::query(&format!(
        "INSERT INTO tokens (name, kind, account_id, hash, hint, read_only, workspaces, created_at, \
         created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
    ))
    .bind(new.name)
    .bind(new.kind.as_str())
    .bind(new.account_id)
    .bind(secret.hash())
    .bind(secret.hint())
    .bind(new.read_only)
    .bind(workspaces)
    .bind(ts(now))
    .bind(new.created_by)
    .bind(new.expires_at.map(ts))
    .fetch_one(db)
    .await?;
    Ok(from_row(&row))
}

/// The token a presented secret belongs to, whatever its state.
pub async fn find_by_secret(
    db: &SqlitePool,
    secret: &TokenSecret,
) -> Result<Option<Token>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tokens WHERE hash = ?"))
        .bind(secret.hash())
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Tokens matching `condition` (SQL after WHERE, one `?` for `value` when given), newest first.
async fn select(
    db: &SqlitePool,
    condition: &str,
    value: Option<&str>,
) -> Result<Vec<Token>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM tokens WHERE {condition} ORDER BY id DESC");
    let mut query = sqlx::query(&sql);
    if let Some(value) = value {
        query = query.bind(value.to_owned());
    }
    Ok(query.fetch_all(db).await?.iter().map(from_row).collect())
}

pub async fn find(db: &SqlitePool, id: i64) -> Result<Option<Token>, sqlx::Error> {
    Ok(select(db, "id = ?", Some(&id.to_string())).await?.pop())
}

/// The live (not revoked, expiry not recorded) token with this name.
pub async fn find_live_by_name(db: &SqlitePool, name: &str) -> Result<Option<Token>, sqlx::Error> {
    Ok(select(
        db,
        "name = ? AND revoked_at IS NULL AND expiry_recorded = 0",
        Some(name),
    )
    .await?
    .pop())
}

pub async fn of_account(db: &SqlitePool, account_id: i64) -> Result<Vec<Token>, sqlx::Error> {
    select(db, "account_id = ?", Some(&account_id.to_string())).await
}

pub async fn of_kind(db: &SqlitePool, kind: TokenKind) -> Result<Vec<Token>, sqlx::Error> {
    select(db, "kind = ?", Some(kind.as_str())).await
}

pub async fn all(db: &SqlitePool) -> Result<Vec<Token>, sqlx::Error> {
    select(db, "1", None).await
}

/// Tokens past their expiry whose expiry is not recorded yet.
pub async fn newly_expired(db: &SqlitePool, now: DateTime<Utc>) -> Result<Vec<Token>, sqlx::Error> {
    let now = ts(now);
    let sql = format!(
        "SELECT {COLUMNS} FROM tokens WHERE expiry_recorded = 0 AND revoked_at IS NULL \
         AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY id"
    );
    let rows = sqlx::query(&sql).bind(now).fetch_all(db).await?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn revoke(
    db: &SqlitePool,
    id: i64,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
    )
    .bind(ts(now))
    .bind(by)
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn mark_expiry_recorded(db: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tokens SET expiry_recorded = 1 WHERE id = ?")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn record_use(
    db: &SqlitePool,
    id: i64,
    from: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tokens SET last_used_at = ?, last_used_from = ? WHERE id = ?")
        .bind(ts(now))
        .bind(from)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_their_prefix_and_redact_themselves() {
        let api = TokenSecret::generate(TokenKind::Api);
        let scim = TokenSecret::generate(TokenKind::Scim);
        assert!(api.expose().starts_with("orgk_") && !api.expose().starts_with("orgk_scim_"));
        assert!(scim.expose().starts_with("orgk_scim_"));
        assert_eq!(api.expose().len(), "orgk_".len() + 40);
        assert_ne!(api.expose(), TokenSecret::generate(TokenKind::Api).expose());
        for shown in [format!("{api}"), format!("{api:?}")] {
            assert!(!shown.contains(&api.expose()[5..]), "{shown}");
        }
        assert!(api.hint().starts_with("orgk_…"));
        assert!(api.expose().ends_with(&api.hint()["orgk_…".len()..]));
    }

    #[test]
    fn the_stored_hash_is_a_sha256_not_the_secret() {
        let secret = TokenSecret::presented("orgk_abc");
        assert_eq!(
            secret.hash(),
            "370426b0ad30fe0e63698a8ec6876bc07457f3c80ec101e8f369eb8c5c98826d"
        );
        assert!(!secret.hash().contains("abc"));
        assert_eq!(secret.hash(), TokenSecret::presented(" orgk_abc\n").hash());
    }
}
