//! The model in SQLite: objects as the API last described them, and the history of who held
//! which role and which key was in which status, when.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};

use super::entity::{Diff, Entity};
use super::Changes;
use std::collections::HashMap;

use crate::anthropic::{
    ApiKey, Invite, Organization, User, Workspace, WorkspaceMember, WorkspaceRateLimit,
};
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
    let mut tx = crate::db::write_tx(db).await?;
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

/// One organization-wide list of limits (`kind` `spend_limits` or `org_rate_limits`), as last
/// read. Only an answer is kept: a refusal is asked again after a restart.
pub async fn save_limits<T: serde::Serialize, E>(
    db: &SqlitePool,
    kind: &str,
    read: &Result<Vec<T>, E>,
) -> Result<(), sqlx::Error> {
    match read {
        Ok(list) => sqlx::query(
            "INSERT INTO org_objects (kind, id, body, first_seen) VALUES (?, 'organization', ?, '') \
             ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
        )
        .bind(kind)
        .bind(serde_json::to_string(list).unwrap_or_default()),
        Err(_) => sqlx::query("DELETE FROM org_objects WHERE kind = ?").bind(kind),
    }
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn load_limits<T: serde::de::DeserializeOwned>(
    db: &SqlitePool,
    kind: &str,
) -> Result<Option<Vec<T>>, sqlx::Error> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM org_objects WHERE kind = ? AND id = 'organization'")
            .bind(kind)
            .fetch_optional(db)
            .await?;
    Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
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
    let mut tx = crate::db::write_tx(db).await?;
    write_changes(&mut tx, changes, &at).await?;
    if let Some((organization, default_workspace_id, baseline)) = sync {
        write_sync(&mut tx, organization, default_workspace_id, baseline, &at).await?;
    }
    tx.commit().await
}

/// The objects of a first complete read, as they are: every one of them is new, and none was
/// observed changing. Written as [`save`] writes additions (objects and the history they
/// open), 500 at a time, from the lists themselves: a difference per object would be a copy
/// of the whole organization (300,000 objects on `xlarge`, most of the 630-740 MB peak at the
/// end of its first read).
pub async fn save_baseline(
    db: &SqlitePool,
    lists: Lists<'_>,
    organization: &Organization,
    default_workspace_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let at = ts(now);
    let mut tx = crate::db::write_tx(db).await?;
    write_added(&mut tx, lists.users, &at, |c| &mut c.users).await?;
    write_added(&mut tx, lists.invites, &at, |c| &mut c.invites).await?;
    write_added(&mut tx, lists.workspaces, &at, |c| &mut c.workspaces).await?;
    write_added(&mut tx, lists.memberships, &at, |c| &mut c.memberships).await?;
    write_added(&mut tx, lists.keys, &at, |c| &mut c.keys).await?;
    write_sync(&mut tx, organization, default_workspace_id, true, &at).await?;
    tx.commit().await
}

/// `list` as additions, [`CHUNK`] at a time (`into` says where a kind goes in [`Changes`]).
async fn write_added<T: Entity>(
    tx: &mut Transaction<'_, Sqlite>,
    list: &[T],
    at: &str,
    into: fn(&mut Changes) -> &mut Vec<Diff<T>>,
) -> Result<(), sqlx::Error> {
    for chunk in list.chunks(CHUNK) {
        let mut changes = Changes::default();
        *into(&mut changes) = chunk
            .iter()
            .map(|item| Diff {
                before: None,
                after: Some(item.clone()),
                observed: false,
            })
            .collect();
        write_changes(tx, &changes, at).await?;
    }
    Ok(())
}

/// The lists a first complete read is made of.
pub struct Lists<'a> {
    pub users: &'a [User],
    pub invites: &'a [Invite],
    pub workspaces: &'a [Workspace],
    pub memberships: &'a [WorkspaceMember],
    pub keys: &'a [ApiKey],
}

/// The organization's name and default workspace, and when it was read (a baseline also
/// moves `baseline_at`).
async fn write_sync(
    tx: &mut Transaction<'_, Sqlite>,
    organization: &Organization,
    default_workspace_id: Option<&str>,
    baseline: bool,
    at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO org_sync (id, organization, default_workspace_id, baseline_at, synced_at) \
         VALUES (1, ?1, ?2, ?3, ?3) \
         ON CONFLICT (id) DO UPDATE SET organization = ?1, default_workspace_id = ?2, \
         synced_at = ?3, baseline_at = CASE WHEN ?4 THEN ?3 ELSE baseline_at END",
    )
    .bind(serde_json::to_string(organization).unwrap_or_default())
    .bind(default_workspace_id)
    .bind(at)
    .bind(baseline)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Differences and the history they open and close. Rows go in many per statement: the
/// baseline of a large organization is tens of thousands.
async fn write_changes(
    tx: &mut Transaction<'_, Sqlite>,
    changes: &Changes,
    at: &str,
) -> Result<(), sqlx::Error> {
    let at = at.to_owned();
    let mut rows = Rows::default();
    for diff in &changes.users {
        let role = |u: &User| u.role.as_str().to_owned();
        rows.history(
            "org_role",
            key_of(diff),
            String::new(),
            diff.before.as_ref().map(role),
            diff.after.as_ref().map(role),
        );
    }
    for diff in &changes.memberships {
        let m = diff
            .after
            .as_ref()
            .or(diff.before.as_ref())
            .expect("a diff has a side");
        let role = |m: &WorkspaceMember| m.workspace_role.as_str().to_owned();
        rows.history(
            "workspace_role",
            m.user_id.to_string(),
            m.workspace_id.to_string(),
            diff.before.as_ref().map(role),
            diff.after.as_ref().map(role),
        );
    }
    for diff in &changes.keys {
        let k = diff
            .after
            .as_ref()
            .or(diff.before.as_ref())
            .expect("a diff has a side");
        let status = |k: &ApiKey| k.status.as_str().to_owned();
        rows.history(
            "key_status",
            k.id.clone(),
            k.workspace_id().unwrap_or("").to_owned(),
            diff.before.as_ref().map(status),
            diff.after.as_ref().map(status),
        );
    }

    save_objects(tx, &changes.users, &at).await?;
    save_objects(tx, &changes.invites, &at).await?;
    save_objects(tx, &changes.workspaces, &at).await?;
    save_objects(tx, &changes.memberships, &at).await?;
    save_objects(tx, &changes.keys, &at).await?;
    // In order: a subject changed twice in one save closes and opens twice.
    let mut opens: Vec<&(&str, String, String, String)> = Vec::new();
    for step in &rows.history {
        match step {
            Step::Close(kind, subject, scope) => {
                open_intervals(tx, &opens, &at).await?;
                opens.clear();
                sqlx::query(
                    "UPDATE org_history SET until = ? WHERE kind = ? AND subject = ? AND scope = ? AND until IS NULL",
                )
                .bind(&at)
                .bind(*kind)
                .bind(subject)
                .bind(scope)
                .execute(&mut **tx)
                .await?;
            }
            Step::Open(open) => opens.push(open),
        }
    }
    open_intervals(tx, &opens, &at).await?;
    Ok(())
}

/// The objects of `diffs` that are there now, and the mark on those that left. Each chunk is
/// written as JSON just before its statement: the baseline of `xlarge` (300,000 objects) held
/// all of it at once, about 150 MB for the few seconds of its save.
async fn save_objects<T: Entity>(
    tx: &mut Transaction<'_, Sqlite>,
    diffs: &[Diff<T>],
    at: &str,
) -> Result<(), sqlx::Error> {
    for chunk in diffs.chunks(CHUNK) {
        let present: Vec<(String, String)> = chunk
            .iter()
            .filter_map(|diff| {
                let after = diff.after.as_ref()?;
                Some((
                    key_of(diff),
                    serde_json::to_string(after).unwrap_or_default(),
                ))
            })
            .collect();
        if !present.is_empty() {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO org_objects (kind, id, body, first_seen) ",
            );
            qb.push_values(&present, |mut row, (id, body)| {
                row.push_bind(T::KIND)
                    .push_bind(id.clone())
                    .push_bind(body.clone())
                    .push_bind(at.to_owned());
            });
            qb.push(" ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, gone_at = NULL");
            crate::db::bulk(&mut qb, present.len(), CHUNK)
                .execute(&mut **tx)
                .await?;
        }
        for diff in chunk.iter().filter(|diff| diff.after.is_none()) {
            sqlx::query("UPDATE org_objects SET gone_at = ? WHERE kind = ? AND id = ?")
                .bind(at)
                .bind(T::KIND)
                .bind(key_of(diff))
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

async fn open_intervals(
    tx: &mut Transaction<'_, Sqlite>,
    opens: &[&(&str, String, String, String)],
    at: &str,
) -> Result<(), sqlx::Error> {
    for chunk in opens.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO org_history (kind, subject, scope, value, since) ",
        );
        qb.push_values(chunk, |mut row, (kind, subject, scope, value)| {
            row.push_bind(*kind)
                .push_bind(subject.clone())
                .push_bind(scope.clone())
                .push_bind(value.clone())
                .push_bind(at.to_owned());
        });
        crate::db::bulk(&mut qb, chunk.len(), CHUNK)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Rows per multi-row statement (5 values each, far below SQLite's parameter limit).
const CHUNK: usize = 500;

/// One change to the history: an interval that ends, or one that starts.
enum Step {
    Close(&'static str, String, String),
    Open((&'static str, String, String, String)),
}

/// The history statements one [`save`] makes, gathered first so they can be batched.
#[derive(Default)]
struct Rows {
    history: Vec<Step>,
}

impl Rows {
    /// Closes the open interval of `subject` in `scope` when its value changed, and opens
    /// the new one. Something with no value before has no open interval (leaving closed it).
    fn history(
        &mut self,
        kind: &'static str,
        subject: String,
        scope: String,
        before: Option<String>,
        after: Option<String>,
    ) {
        if before.is_some() && before == after {
            return;
        }
        if before.is_some() {
            self.history
                .push(Step::Close(kind, subject.clone(), scope.clone()));
        }
        if let Some(value) = after {
            self.history.push(Step::Open((kind, subject, scope, value)));
        }
    }
}

fn key_of<T: Entity>(diff: &Diff<T>) -> String {
    diff.after
        .as_ref()
        .or(diff.before.as_ref())
        .expect("a diff has a side")
        .key()
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
