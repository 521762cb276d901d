//! The organization's people, invites, workspaces, memberships and API keys: reads from the
//! model within the caller's scope, changes through the service layer.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::Uri;
use serde_json::{json, Value};

use super::{body, changed, hidden, model, query, required, text, to_json, Door, Reply, Written};
use crate::anthropic::{ApiKeyStatus, InviteStatus, OrgRole, WorkspaceRole};
use crate::auth::Permission;
use crate::contract::{bad_enum, id_window, ApiError, ApiResult, WORKSPACE_FIELDS};
use crate::service;

fn known<T>(values: &[T], as_str: impl Fn(&T) -> &str) -> Vec<&str> {
    values.iter().map(as_str).collect()
}

fn org_roles() -> Vec<&'static str> {
    known(OrgRole::KNOWN, OrgRole::as_str)
}

/// One value of a body's enum field, checked against what the API accepts.
fn one_of<'a>(value: &'a str, field: &str, allowed: &[&str]) -> ApiResult<&'a str> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(bad_enum(field, value, allowed))
    }
}

/// Emails compare as the Admin API compares them: trimmed, case-insensitive.
fn same_email(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// An id-cursor page of `items` (position in the model's list, object), as §3.1 describes,
/// written straight from the model.
fn page_of<T: serde::Serialize>(
    uri: &Uri,
    items: Vec<(usize, &T)>,
    id_of: impl Fn(&T) -> String,
    position_of: impl Fn(&str) -> Option<usize>,
) -> ApiResult<Written> {
    #[derive(serde::Serialize)]
    struct Page<'a, T> {
        data: Vec<&'a T>,
        has_more: bool,
        first_id: Option<String>,
        last_id: Option<String>,
    }
    let (window, has_more) = id_window(
        &query(uri),
        &items,
        |(at, _)| *at as u64,
        |id| position_of(id).map(|at| at as u64),
    )?;
    Written::of(&Page {
        data: window.iter().map(|(_, item)| *item).collect(),
        has_more,
        first_id: window.first().map(|(_, item)| id_of(item)),
        last_id: window.last().map(|(_, item)| id_of(item)),
    })
}

// ---- The organization ----

pub async fn me(door: Door) -> Reply {
    let result = model(&door).and_then(|m| {
        m.organization
            .as_ref()
            .map(to_json)
            .ok_or_else(|| ApiError::not_found("The organization has not been read yet."))
    });
    door.reply(result)
}

// ---- Members ----

pub async fn list_users(door: Door, uri: Uri) -> Reply {
    let result = async {
        door.require(Permission::ViewDirectory).await?;
        let m = model(&door)?;
        let q = query(&uri);
        let roles = q.enum_all("roles", &org_roles())?;
        let email = q.get("email");
        let items = m
            .users
            .iter()
            .enumerate()
            .filter(|(_, u)| email.is_none_or(|e| same_email(&u.email, e)))
            .filter(|(_, u)| roles.is_empty() || roles.iter().any(|r| r == u.role.as_str()))
            .collect();
        page_of(
            &uri,
            items,
            |u| u.id.clone(),
            |id| m.users.iter().position(|u| u.id == id),
        )
    }
    .await;
    door.reply_written(result)
}

async fn user(door: &Door, id: &str) -> ApiResult<crate::anthropic::User> {
    door.require(Permission::ViewDirectory).await?;
    let m = model(door)?;
    m.users
        .iter()
        .find(|u| u.id == id)
        .cloned()
        .ok_or_else(|| hidden(id))
}

pub async fn get_user(door: Door, Path(id): Path<String>) -> Reply {
    let result = user(&door, &id).await.map(|u| to_json(&u));
    door.reply(result)
}

pub async fn update_user(door: Door, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let result = async {
        let map = body(&bytes, &["role"])?;
        let role = one_of(required(&map, "role")?, "role", &org_roles())?;
        let user = user(&door, &id).await?;
        let change = service::members::change_role(
            &door.services,
            &door.caller,
            &user,
            OrgRole::parse(role),
        )
        .await;
        super::changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

pub async fn remove_user(door: Door, Path(id): Path<String>) -> Reply {
    let result = async {
        let user = user(&door, &id).await?;
        let change = service::members::remove(
            &door.services,
            &door.caller,
            &user.id,
            &user.email,
            json!({}),
        )
        .await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

// ---- Invites ----

pub async fn list_invites(door: Door, uri: Uri) -> Reply {
    let result = async {
        door.require(Permission::ViewDirectory).await?;
        let m = model(&door)?;
        let q = query(&uri);
        let roles = q.enum_all("roles", &org_roles())?;
        let statuses = q.enum_all("statuses", &["pending", "accepted", "expired", "deleted"])?;
        let email = q.get("email");
        let items = m
            .invites
            .iter()
            .enumerate()
            .filter(|(_, i)| email.is_none_or(|e| same_email(&i.email, e)))
            .filter(|(_, i)| roles.is_empty() || roles.iter().any(|r| r == i.role.as_str()))
            .filter(|(_, i)| {
                if statuses.is_empty() {
                    i.status != InviteStatus::Deleted
                } else {
                    statuses.iter().any(|s| s == i.status.as_str())
                }
            })
            .collect();
        page_of(
            &uri,
            items,
            |i| i.id.clone(),
            |id| m.invites.iter().position(|i| i.id == id),
        )
    }
    .await;
    door.reply_written(result)
}

async fn invite(door: &Door, id: &str) -> ApiResult<crate::anthropic::Invite> {
    door.require(Permission::ViewDirectory).await?;
    let m = model(door)?;
    m.invites
        .iter()
        .find(|i| i.id == id)
        .cloned()
        .ok_or_else(|| hidden(id))
}

pub async fn get_invite(door: Door, Path(id): Path<String>) -> Reply {
    let result = invite(&door, &id).await.map(|i| to_json(&i));
    door.reply(result)
}

pub async fn create_invite(door: Door, bytes: Bytes) -> Reply {
    let result = async {
        let map = body(&bytes, &["email", "role", "rbac_group_ids"])?;
        let email = required(&map, "email")?.trim().to_owned();
        let role = OrgRole::parse(one_of(required(&map, "role")?, "role", &org_roles())?);
        if map
            .get("rbac_group_ids")
            .and_then(Value::as_array)
            .is_some_and(|ids| !ids.is_empty())
        {
            return Err(ApiError::invalid(
                "rbac_group_ids: groups exist only in Claude Enterprise organizations",
            ));
        }
        if !service::invites::valid_email(&email) {
            return Err(ApiError::invalid(
                "email: value is not a valid email address",
            ));
        }
        service::invites::check_role(&role).map_err(|e| super::from_service(e, &door.caller))?;
        let change = service::invites::create(&door.services, &door.caller, &email, &role).await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

pub async fn delete_invite(door: Door, Path(id): Path<String>) -> Reply {
    let result = async {
        let invite = invite(&door, &id).await?;
        let change = service::invites::delete(
            &door.services,
            &door.caller,
            &invite.id,
            &invite.email,
            json!({}),
        )
        .await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

// ---- Workspaces ----

pub async fn list_workspaces(door: Door, uri: Uri) -> Reply {
    let result = async {
        door.require(Permission::ViewWorkspaces).await?;
        let m = model(&door)?;
        let q = query(&uri);
        let archived = q.bool("include_archived", false)?;
        let ids = q.all("ids");
        if ids.len() > 100 {
            return Err(ApiError::invalid("ids: List should have at most 100 items"));
        }
        let items = m
            .workspaces
            .iter()
            .enumerate()
            .filter(|(_, w)| archived || !w.is_archived())
            .filter(|(_, w)| ids.is_empty() || ids.contains(&w.id))
            .filter(|(_, w)| door.caller.may_touch_workspace(&w.id))
            .collect();
        page_of(
            &uri,
            items,
            |w| w.id.clone(),
            |id| m.workspaces.iter().position(|w| w.id == id),
        )
    }
    .await;
    door.reply_written(result)
}

/// A workspace the caller may read (others are not found).
async fn workspace(door: &Door, id: &str) -> ApiResult<crate::anthropic::Workspace> {
    door.require(Permission::ViewWorkspaces).await?;
    let m = model(door)?;
    m.workspaces
        .iter()
        .find(|w| w.id == id && door.caller.may_touch_workspace(&w.id))
        .cloned()
        .ok_or_else(|| hidden(id))
}

pub async fn get_workspace(door: Door, Path(id): Path<String>) -> Reply {
    let result = workspace(&door, &id).await.map(|w| to_json(&w));
    door.reply(result)
}

/// Fields of a workspace body Orgkeeper does not set: said plainly, before anything changes.
fn refuse_unsupported(map: &serde_json::Map<String, Value>) -> ApiResult<()> {
    match ["tags", "data_residency", "external_key_id", "user_profile_id"]
        .into_iter()
        .find(|f| map.contains_key(*f))
    {
        Some(field) => Err(ApiError::invalid(format!(
            "{field}: Orgkeeper's Admin API sets a workspace's name and colour only; set {field} in the Anthropic Console"
        ))),
        None => Ok(()),
    }
}

pub async fn create_workspace(door: Door, bytes: Bytes) -> Reply {
    let result = async {
        let map = body(&bytes, WORKSPACE_FIELDS)?;
        refuse_unsupported(&map)?;
        let name = required(&map, "name")?;
        let color = text(&map, "display_color")?;
        let change = service::workspaces::create(&door.services, &door.caller, name, color).await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

pub async fn update_workspace(door: Door, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let result = async {
        let map = body(&bytes, WORKSPACE_FIELDS)?;
        refuse_unsupported(&map)?;
        let workspace = workspace(&door, &id).await?;
        let name = text(&map, "name")?;
        let color = text(&map, "display_color")?;
        if name.is_none() && color.is_none() {
            return Ok(to_json(&workspace));
        }
        let change =
            service::workspaces::update(&door.services, &door.caller, &workspace, name, color)
                .await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

pub async fn archive_workspace(door: Door, Path(id): Path<String>) -> Reply {
    let result = async {
        let workspace = workspace(&door, &id).await?;
        let change = service::workspaces::archive(&door.services, &door.caller, &workspace).await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

// ---- Workspace members ----

pub async fn list_members(door: Door, Path(id): Path<String>, uri: Uri) -> Reply {
    let result = async {
        let workspace = workspace(&door, &id).await?;
        let m = model(&door)?;
        let members = m.members_in(&workspace.id);
        page_of(
            &uri,
            members.iter().enumerate().collect(),
            |member| member.user_id.to_string(),
            |user_id| {
                members
                    .iter()
                    .position(|member| *member.user_id == *user_id)
            },
        )
    }
    .await;
    door.reply_written(result)
}

/// A member of a readable workspace: (workspace, membership, label for the audit log).
async fn membership(
    door: &Door,
    id: &str,
    user_id: &str,
) -> ApiResult<(
    crate::anthropic::Workspace,
    crate::anthropic::WorkspaceMember,
    String,
)> {
    let workspace = workspace(door, id).await?;
    let m = model(door)?;
    let member = m
        .members_in(&workspace.id)
        .iter()
        .find(|member| &*member.user_id == user_id)
        .cloned()
        .ok_or_else(|| hidden(user_id))?;
    Ok((workspace, member, label_of(&m, user_id)))
}

/// How the audit log names a person: their email, else their id.
fn label_of(m: &crate::org::Snapshot, user_id: &str) -> String {
    m.person(user_id)
        .map_or(user_id.to_owned(), |(u, _)| u.email.clone())
}

pub async fn get_member(door: Door, Path((id, user_id)): Path<(String, String)>) -> Reply {
    let result = membership(&door, &id, &user_id)
        .await
        .map(|(_, member, _)| to_json(&member));
    door.reply(result)
}

fn workspace_roles() -> Vec<&'static str> {
    known(WorkspaceRole::KNOWN, WorkspaceRole::as_str)
}

pub async fn add_member(door: Door, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let result = async {
        let map = body(&bytes, &["user_id", "workspace_role"])?;
        let user_id = required(&map, "user_id")?;
        let assignable: Vec<&str> = workspace_roles()
            .into_iter()
            .filter(|r| *r != "workspace_billing")
            .collect();
        let role = one_of(
            required(&map, "workspace_role")?,
            "workspace_role",
            &assignable,
        )?;
        let workspace = workspace(&door, &id).await?;
        let label = label_of(&*model(&door)?, user_id);
        let change = service::workspaces::add_member(
            &door.services,
            &door.caller,
            &workspace,
            (user_id, &label),
            &WorkspaceRole::parse(role),
        )
        .await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

pub async fn update_member(
    door: Door,
    Path((id, user_id)): Path<(String, String)>,
    bytes: Bytes,
) -> Reply {
    let result = async {
        let map = body(&bytes, &["workspace_role"])?;
        let role = one_of(
            required(&map, "workspace_role")?,
            "workspace_role",
            &workspace_roles(),
        )?;
        let (workspace, member, label) = membership(&door, &id, &user_id).await?;
        let change = service::workspaces::change_member_role(
            &door.services,
            &door.caller,
            &workspace,
            (&user_id, &label),
            Some(member.workspace_role.as_str()),
            &WorkspaceRole::parse(role),
        )
        .await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

pub async fn remove_member(door: Door, Path((id, user_id)): Path<(String, String)>) -> Reply {
    let result = async {
        let (workspace, member, label) = membership(&door, &id, &user_id).await?;
        let change = service::workspaces::remove_member(
            &door.services,
            &door.caller,
            &workspace,
            (&user_id, &label),
            Some(member.workspace_role.as_str()),
            json!({}),
        )
        .await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

// ---- API keys ----

pub async fn list_keys(door: Door, uri: Uri) -> Reply {
    let result = async {
        door.require(Permission::ViewWorkspaces).await?;
        let m = model(&door)?;
        let q = query(&uri);
        let statuses = known(ApiKeyStatus::KNOWN, ApiKeyStatus::as_str);
        let status = q
            .get("status")
            .map(|s| one_of(s, "status", &statuses))
            .transpose()?;
        let workspace = q.get("workspace_id");
        let creator = q.get("created_by_user_id");
        let items = m
            .keys
            .iter()
            .enumerate()
            .filter(|(_, k)| door.caller.may_reach_key(k))
            .filter(|(_, k)| status.is_none_or(|s| k.status.as_str() == s))
            .filter(|(_, k)| workspace.is_none_or(|w| k.workspace_id() == Some(w)))
            .filter(|(_, k)| {
                creator.is_none_or(|c| k.created_by.as_ref().is_some_and(|by| &*by.id == c))
            })
            .collect();
        page_of(
            &uri,
            items,
            |k| k.id.clone(),
            |id| m.keys.iter().position(|k| k.id == id),
        )
    }
    .await;
    door.reply_written(result)
}

/// A key the caller may reach (others are not found).
async fn key(door: &Door, id: &str) -> ApiResult<crate::anthropic::ApiKey> {
    door.require(Permission::ViewWorkspaces).await?;
    let m = model(door)?;
    m.key(id)
        .filter(|k| door.caller.may_reach_key(k))
        .cloned()
        .ok_or_else(|| hidden(id))
}

pub async fn get_key(door: Door, Path(id): Path<String>) -> Reply {
    let result = key(&door, &id).await.map(|k| to_json(&k));
    door.reply(result)
}

/// `{name?, status?}`: a rename and a status change are two changes, each audited; the
/// answer is the key after both.
pub async fn update_key(door: Door, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let result = async {
        let map = body(&bytes, &["name", "status"])?;
        let name = text(&map, "name")?;
        let status = text(&map, "status")?
            .map(|s| one_of(s, "status", &["active", "inactive", "archived"]))
            .transpose()?;
        let mut key = key(&door, &id).await?;
        if let Some(name) = name.filter(|n| *n != key.name) {
            match service::keys::rename(&door.services, &door.caller, &key, name).await {
                Ok(Ok(renamed)) => key = renamed,
                other => return changed(other, &door.caller),
            }
        }
        if let Some(status) = status.map(ApiKeyStatus::parse).filter(|s| *s != key.status) {
            let change = service::keys::set_status(
                &door.services,
                &door.caller,
                (&key).into(),
                status,
                json!({}),
            )
            .await;
            match change {
                Ok(Ok(done)) => key = done.key,
                other => return changed(other.map(|r| r.map(|done| done.key)), &door.caller),
            }
        }
        Ok(to_json(&key))
    }
    .await;
    door.reply(result)
}
