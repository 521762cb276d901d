//! The model in SQLite: objects as the API last described them, and the history of who held
//! which role and which key was in which status, when.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::entity::{Diff, Entity};
use super::Changes;
use std::collections::HashMap;

use crate::anthropic::{ApiKey, Organization, User, WorkspaceMember, WorkspaceRateLimit};
use crate::db::ts;

/// What was stored, as loaded at start-up.
pub struct Stored {
    pub organization: Option<Organization>,
    pub default_workspace_id: Option<String>,
    pub baseline_at: Option<DateTime<Utc>>,
    pub synced_at: Option<DateTime<Utc>>,
}

fn parse_time(text: Option<String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub async fn load_sync(db: &SqlitePool) -> Result<Stored, sqlx::Error> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> =
        sqlx::query_as(
            "SELECT organization, default_workspace_id, baseline_at, synced_at FROM org_sync WHERE id = 1",
        )
        .fetch_optional(db)
        .await?;
    let (organization, default_workspace_id, baseline_at, synced_at) =
        row.unwrap_or((None, None, None, None));
    Ok(Stored {
        organization: organization.and_then(|json| serde_json::from_str(&json).ok()),
        default_workspace_id,
        baseline_at: parse_time(baseline_at),
        synced_at: parse_time(synced_at),
    })
}

/// The current objects of one kind (`gone` false) or the ones that left (`gone` true), in the
/// order they were first seen.
pub async fn load<T: Entity>(db: &SqlitePool, gone: bool) -> Result<Vec<T>, sqlx::Error> {
    let sql = if gone {
        "SELECT body FROM org_objects WHERE kind = ? AND gone_at IS NOT NULL ORDER BY rowid"
    } else {
        "SELECT body FROM org_objects WHERE kind = ? AND gone_at IS NULL ORDER BY rowid"
    };
    let bodies: Vec<String> = sqlx::query_scalar(sql).bind(T::KIND).fetch_all(db).await?;
    Ok(bodies
        .iter()
        .filter_map(|body| serde_json::from_str(body).ok())
        .collect())
}

/// Rate limits are kept per workspace as read (they change only in the Console, and are not
/// part of the observed history).
pub async fn load_rate_limits(
    db: &SqlitePool,
) -> Result<HashMap<String, Result<Vec<WorkspaceRateLimit>, String>>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, body FROM org_objects WHERE kind = 'rate_limits' AND gone_at IS NULL",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, body)| Some((id, Ok(serde_json::from_str(&body).ok()?))))
        .collect())
}

pub async fn save_rate_limits(
    db: &SqlitePool,
    limits: &HashMap<String, Result<Vec<WorkspaceRateLimit>, String>>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM org_objects WHERE kind = 'rate_limits'")
        .execute(&mut *tx)
        .await?;
    for (id, list) in limits {
        if let Ok(list) = list {
            sqlx::query(
                "INSERT INTO org_objects (kind, id, body, first_seen) VALUES ('rate_limits', ?, ?, '')",
            )
            .bind(id)
            .bind(serde_json::to_string(list).unwrap_or_default())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

/// When each removed member left.
pub async fn removed_at(db: &SqlitePool) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, gone_at FROM org_objects WHERE kind = 'user' AND gone_at IS NOT NULL",
    )
    .fetch_all(db)
    .await
}

/// Writes one sync's or one change's differences, with their history, in one transaction.
pub async fn save(
    db: &SqlitePool,
    changes: &Changes,
    sync: Option<(&Organization, Option<&str>, bool)>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let at = ts(now);
    let mut tx = db.begin().await?;
    objects(&mut tx, &changes.users, &at).await?;
    objects(&mut tx, &changes.invites, &at).await?;
    objects(&mut tx, &changes.workspaces, &at).await?;
    objects(&mut tx, &changes.memberships, &at).await?;
    objects(&mut tx, &changes.keys, &at).await?;
    for diff in &changes.users {
        let role = |u: &User| u.role.as_str().to_owned();
        let subject = key_of(diff);
        history(
            &mut tx,
            "org_role",
            &subject,
            "",
            diff.before.as_ref().map(role),
            diff.after.as_ref().map(role),
            &at,
        )
        .await?;
    }
    for diff in &changes.memberships {
        let m = diff
            .after
            .as_ref()
            .or(diff.before.as_ref())
            .expect("a diff has a side");
        let role = |m: &WorkspaceMember| m.workspace_role.as_str().to_owned();
        history(
            &mut tx,
            "workspace_role",
            &m.user_id,
            &m.workspace_id,
            diff.before.as_ref().map(role),
            diff.after.as_ref().map(role),
            &at,
        )
        .await?;
    }
    for diff in &changes.keys {
        let k = diff
            .after
            .as_ref()
            .or(diff.before.as_ref())
            .expect("a diff has a side");
        let status = |k: &ApiKey| k.status.as_str().to_owned();
        history(
            &mut tx,
            "key_status",
            &k.id,
            k.workspace_id().unwrap_or(""),
            diff.before.as_ref().map(status),
            diff.after.as_ref().map(status),
            &at,
        )
        .await?;
    }
    if let Some((organization, default_workspace_id, baseline)) = sync {
        sqlx::query(
            "INSERT INTO org_sync (id, organization, default_workspace_id, baseline_at, synced_at) \
             VALUES (1, ?1, ?2, ?3, ?3) \
             ON CONFLICT (id) DO UPDATE SET organization = ?1, default_workspace_id = ?2, \
             synced_at = ?3, baseline_at = CASE WHEN ?4 THEN ?3 ELSE baseline_at END",
        )
        .bind(serde_json::to_string(organization).unwrap_or_default())
        .bind(default_workspace_id)
        .bind(&at)
        .bind(baseline)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

fn key_of<T: Entity>(diff: &Diff<T>) -> String {
    diff.after
        .as_ref()
        .or(diff.before.as_ref())
        .expect("a diff has a side")
        .key()
}

async fn objects<T: Entity>(
    tx: &mut Transaction<'_, Sqlite>,
    diffs: &[Diff<T>],
    at: &str,
) -> Result<(), sqlx::Error> {
    for diff in diffs {
        let key = key_of(diff);
        match &diff.after {
            Some(after) => {
                sqlx::query(
                    "INSERT INTO org_objects (kind, id, body, first_seen) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, gone_at = NULL",
                )
                .bind(T::KIND)
                .bind(&key)
                .bind(serde_json::to_string(after).unwrap_or_default())
                .bind(at)
                .execute(&mut **tx)
                .await?;
            }
            None => {
                sqlx::query("UPDATE org_objects SET gone_at = ? WHERE kind = ? AND id = ?")
                    .bind(at)
                    .bind(T::KIND)
                    .bind(&key)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Closes the open interval of `subject` in `scope` when its value changed, and opens the new one.
#[allow(clippy::too_many_arguments)]
async fn history(
    tx: &mut Transaction<'_, Sqlite>,
    kind: &str,
    subject: &str,
    scope: &str,
    before: Option<String>,
    after: Option<String>,
    at: &str,
) -> Result<(), sqlx::Error> {
    if before.is_some() && before == after {
        return Ok(());
    }
    sqlx::query(
        "UPDATE org_history SET until = ? WHERE kind = ? AND subject = ? AND scope = ? AND until IS NULL",
    )
    .bind(at)
    .bind(kind)
    .bind(subject)
    .bind(scope)
    .execute(&mut **tx)
    .await?;
    if let Some(value) = after {
        sqlx::query(
            "INSERT INTO org_history (kind, subject, scope, value, since) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(kind)
        .bind(subject)
        .bind(scope)
        .bind(value)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// One interval of the history, for the access review.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Held {
    pub kind: String,
    pub subject: String,
    pub scope: String,
    pub value: String,
    pub since: String,
    pub until: Option<String>,
}

/// Every role and key status that held in `workspace` at `at` (organization roles too, since
/// they decide workspace access).
pub async fn held_at(
    db: &SqlitePool,
    workspace: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Held>, sqlx::Error> {
    let at = ts(at);
    sqlx::query_as(
        "SELECT kind, subject, scope, value, since, until FROM org_history \
         WHERE (scope = ?1 OR kind = 'org_role') AND since <= ?2 AND (until IS NULL OR until > ?2) \
         ORDER BY kind, subject",
    )
    .bind(workspace)
    .bind(at)
    .fetch_all(db)
    .await
}
