//! SCIM's own tables (migrations/0013_scim.sql): provisioned people, groups, their members and
//! the group mappings. The rules are in the parent module.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};

use crate::anthropic::{OrgRole, WorkspaceRole};
use crate::db::ts;

/// A person as the identity provider provisioned them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimUser {
    pub id: String,
    pub user_name: String,
    /// Lower-cased: how the person is found in the organization.
    pub email: String,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The last refusal of a change for them, until a later change succeeds.
    pub problem: Option<String>,
}

/// A group and its members' SCIM ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimGroup {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub members: Vec<String>,
}

/// What a group gives its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub id: i64,
    pub group_name: String,
    pub role: Option<OrgRole>,
    pub workspaces: Vec<(String, WorkspaceRole)>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

fn time(raw: String) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&raw)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn user_from(row: &sqlx::sqlite::SqliteRow) -> ScimUser {
    ScimUser {
        id: row.get("id"),
        user_name: row.get("user_name"),
        email: row.get("email"),
        external_id: row.get("external_id"),
        given_name: row.get("given_name"),
        family_name: row.get("family_name"),
        display_name: row.get("display_name"),
        active: row.get("active"),
        created_at: time(row.get("created_at")),
        updated_at: time(row.get("updated_at")),
        problem: row.get("problem"),
    }
}

/// Every provisioned person, oldest first (SCIM lists need a stable order).
pub async fn users(db: &SqlitePool) -> Result<Vec<ScimUser>, sqlx::Error> {
    Ok(
        sqlx::query("SELECT * FROM scim_users ORDER BY created_at, rowid")
            .fetch_all(db)
            .await?
            .iter()
            .map(user_from)
            .collect(),
    )
}

/// An indexed way to find people, so a provider's lookup before each create reads one row,
/// not the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Id,
    UserName,
    Email,
    ExternalId,
}

/// The people one indexed attribute matches (user names and addresses without regard to case).
pub async fn users_by(
    db: &SqlitePool,
    lookup: Lookup,
    value: &str,
) -> Result<Vec<ScimUser>, sqlx::Error> {
    let condition = match lookup {
        Lookup::Id => "id = ?",
        Lookup::UserName => "lower(user_name) = lower(?)",
        Lookup::Email => "email = lower(?)",
        Lookup::ExternalId => "external_id = ?",
    };
    let sql = format!("SELECT * FROM scim_users WHERE {condition} ORDER BY created_at, rowid");
    Ok(sqlx::query(&sql)
        .bind(value)
        .fetch_all(db)
        .await?
        .iter()
        .map(user_from)
        .collect())
}

pub async fn user(db: &SqlitePool, id: &str) -> Result<Option<ScimUser>, sqlx::Error> {
    Ok(sqlx::query("SELECT * FROM scim_users WHERE id = ?")
        .bind(id)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(user_from))
}

pub async fn user_by_email(db: &SqlitePool, email: &str) -> Result<Option<ScimUser>, sqlx::Error> {
    Ok(sqlx::query("SELECT * FROM scim_users WHERE email = ?")
        .bind(email.to_lowercase())
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(user_from))
}

/// Stores a person, new or changed (a taken address fails: see [`taken`]).
pub async fn save_user(db: &SqlitePool, user: &ScimUser) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scim_users (id, user_name, email, external_id, given_name, family_name, display_name, active, created_at, updated_at, problem) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET user_name = excluded.user_name, email = excluded.email, external_id = excluded.external_id, given_name = excluded.given_name, family_name = excluded.family_name, display_name = excluded.display_name, active = excluded.active, updated_at = excluded.updated_at, problem = excluded.problem",
    )
    .bind(&user.id)
    .bind(&user.user_name)
    .bind(&user.email)
    .bind(&user.external_id)
    .bind(&user.given_name)
    .bind(&user.family_name)
    .bind(&user.display_name)
    .bind(user.active)
    .bind(ts(user.created_at))
    .bind(ts(user.updated_at))
    .bind(&user.problem)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_problem(
    db: &SqlitePool,
    id: &str,
    problem: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE scim_users SET problem = ? WHERE id = ?")
        .bind(problem)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn delete_user(db: &SqlitePool, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM scim_users WHERE id = ?")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Every group with its members, oldest first.
pub async fn groups(db: &SqlitePool) -> Result<Vec<ScimGroup>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM scim_groups ORDER BY created_at, rowid")
        .fetch_all(db)
        .await?;
    let members: Vec<(String, String)> =
        sqlx::query_as("SELECT group_id, user_id FROM scim_group_members ORDER BY rowid")
            .fetch_all(db)
            .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let id: String = row.get("id");
            ScimGroup {
                members: members
                    .iter()
                    .filter(|(g, _)| *g == id)
                    .map(|(_, u)| u.clone())
                    .collect(),
                display_name: row.get("display_name"),
                external_id: row.get("external_id"),
                created_at: time(row.get("created_at")),
                updated_at: time(row.get("updated_at")),
                id,
            }
        })
        .collect())
}

pub async fn group(db: &SqlitePool, id: &str) -> Result<Option<ScimGroup>, sqlx::Error> {
    Ok(groups(db).await?.into_iter().find(|g| g.id == id))
}

/// Stores a group and its members as given (a new group, or a replacement).
pub async fn save_group(db: &SqlitePool, group: &ScimGroup) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::write_tx(db).await?;
    sqlx::query(
        "INSERT INTO scim_groups (id, display_name, external_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, external_id = excluded.external_id, updated_at = excluded.updated_at",
    )
    .bind(&group.id)
    .bind(&group.display_name)
    .bind(&group.external_id)
    .bind(ts(group.created_at))
    .bind(ts(group.updated_at))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM scim_group_members WHERE group_id = ?")
        .bind(&group.id)
        .execute(&mut *tx)
        .await?;
    for member in &group.members {
        sqlx::query("INSERT OR IGNORE INTO scim_group_members (group_id, user_id) VALUES (?, ?)")
            .bind(&group.id)
            .bind(member)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

pub async fn delete_group(db: &SqlitePool, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM scim_groups WHERE id = ?")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether a write failed because the name or address is taken.
pub fn taken(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn mapping_from(row: &sqlx::sqlite::SqliteRow) -> Mapping {
    let workspaces: String = row.get("workspaces");
    let pairs: Vec<(String, String)> = serde_json::from_str(&workspaces).unwrap_or_default();
    Mapping {
        id: row.get("id"),
        group_name: row.get("group_name"),
        role: row
            .get::<Option<String>, _>("org_role")
            .map(|r| OrgRole::parse(&r)),
        workspaces: pairs
            .into_iter()
            .map(|(w, r)| (w, WorkspaceRole::parse(&r)))
            .collect(),
        created_at: time(row.get("created_at")),
        created_by: row.get("created_by"),
    }
}

pub async fn mappings(db: &SqlitePool) -> Result<Vec<Mapping>, sqlx::Error> {
    Ok(
        sqlx::query("SELECT * FROM scim_mappings ORDER BY lower(group_name)")
            .fetch_all(db)
            .await?
            .iter()
            .map(mapping_from)
            .collect(),
    )
}

pub async fn insert_mapping(
    db: &SqlitePool,
    group_name: &str,
    role: Option<&OrgRole>,
    workspaces: &[(String, WorkspaceRole)],
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<Mapping, sqlx::Error> {
    let pairs: Vec<(&str, &str)> = workspaces
        .iter()
        .map(|(w, r)| (w.as_str(), r.as_str()))
        .collect();
    let row = sqlx::query(
        "INSERT INTO scim_mappings (group_name, org_role, workspaces, created_at, created_by) VALUES (?, ?, ?, ?, ?) RETURNING *",
    )
    .bind(group_name)
    .bind(role.map(|r| r.as_str().to_owned()))
    .bind(serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into()))
    .bind(ts(now))
    .bind(created_by)
    .fetch_one(db)
    .await?;
    Ok(mapping_from(&row))
}

pub async fn delete_mapping(db: &SqlitePool, id: i64) -> Result<Option<Mapping>, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM scim_mappings WHERE id = ? RETURNING *")
            .bind(id)
            .fetch_optional(db)
            .await?
            .as_ref()
            .map(mapping_from),
    )
}
