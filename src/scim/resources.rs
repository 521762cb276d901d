//! SCIM resources as JSON: what a user and a group look like, what a request's body says,
//! and PATCH applied the way Okta, Entra ID and authentik send it (capitalised operations,
//! path-less operations with a value object, `"active": "False"` as a string).

use serde_json::{json, Map, Value};

use super::discovery::{GROUP, USER};
use super::Refusal;
use crate::service::scim::{GroupFields, ScimGroup, ScimUser, UserFields};

fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn user_json(user: &ScimUser, base: &str) -> Value {
    let mut name = Map::new();
    if let Some(given) = &user.given_name {
        name.insert("givenName".into(), json!(given));
    }
    if let Some(family) = &user.family_name {
        name.insert("familyName".into(), json!(family));
    }
    let mut out = json!({
        "schemas": [USER],
        "id": user.id,
        "userName": user.user_name,
        "emails": [{ "value": user.email, "type": "work", "primary": true }],
        "active": user.active,
        "meta": {
            "resourceType": "User",
            "created": time(user.created_at),
            "lastModified": time(user.updated_at),
            "location": format!("{base}/Users/{}", user.id),
        }
    });
    if !name.is_empty() {
        out["name"] = Value::Object(name);
    }
    if let Some(display) = &user.display_name {
        out["displayName"] = json!(display);
    }
    if let Some(external) = &user.external_id {
        out["externalId"] = json!(external);
    }
    out
}

pub fn group_json(group: &ScimGroup, users: &[ScimUser], base: &str) -> Value {
    let members: Vec<Value> = group
        .members
        .iter()
        .map(|id| {
            let display = users.iter().find(|u| &u.id == id).map(|u| u.email.clone());
            json!({ "value": id, "display": display, "type": "User", "$ref": format!("{base}/Users/{id}") })
        })
        .collect();
    let mut out = json!({
        "schemas": [GROUP],
        "id": group.id,
        "displayName": group.display_name,
        "members": members,
        "meta": {
            "resourceType": "Group",
            "created": time(group.created_at),
            "lastModified": time(group.updated_at),
            "location": format!("{base}/Groups/{}", group.id),
        }
    });
    if let Some(external) = &group.external_id {
        out["externalId"] = json!(external);
    }
    out
}

/// Keeps only the asked-for attributes (`attributes`), or drops some (`excludedAttributes`);
/// `schemas`, `id` and `meta` always stay (RFC 7644 §3.4.2.5).
pub fn project(mut resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(|a| {
                let a = a.trim().to_lowercase();
                let a = match a.rfind(':') {
                    Some(at) if a.starts_with("urn:") => a[at + 1..].to_owned(),
                    _ => a,
                };
                a.split('.').next().unwrap_or_default().to_owned()
            })
            .filter(|a| !a.is_empty())
            .collect()
    };
    let always = ["schemas", "id", "meta"];
    if let Value::Object(map) = &mut resource {
        if let Some(list) = attributes.filter(|l| !l.trim().is_empty()) {
            let keep = names(list);
            map.retain(|k, _| always.contains(&k.as_str()) || keep.contains(&k.to_lowercase()));
        } else if let Some(list) = excluded {
            let drop = names(list);
            map.retain(|k, _| always.contains(&k.as_str()) || !drop.contains(&k.to_lowercase()));
        }
    }
    resource
}

pub fn list(resources: Vec<Value>, total: usize, start: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": start,
        "Resources": resources,
    })
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// `true`, `false`, or the strings Entra ID sends ("True", "False").
fn boolean(value: &Value) -> Result<bool, Refusal> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(Refusal::invalid(
            "invalidValue",
            format!("active must be true or false, not {other}"),
        )),
    }
}

/// The addresses in an `emails` value, the primary one first.
fn emails(value: &Value) -> Vec<String> {
    let mut found: Vec<(bool, String)> = match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|e| match e {
                Value::String(s) => Some((false, s.clone())),
                _ => text(&e["value"]).map(|v| (e["primary"] == json!(true), v)),
            })
            .collect(),
        Value::String(s) => vec![(true, s.clone())],
        _ => Vec::new(),
    };
    found.sort_by_key(|(primary, _)| !primary);
    found
        .into_iter()
        .map(|(_, e)| e.trim().to_owned())
        .collect()
}

/// A whole user from a POST or PUT body; what the provider may add (`password`, `groups`,
/// `meta`, `roles`, extensions) is ignored, and a password is never kept.
pub fn user_fields(body: &Value) -> Result<UserFields, Refusal> {
    if !body.is_object() {
        return Err(Refusal::invalid(
            "invalidSyntax",
            "The body must be a JSON object.",
        ));
    }
    let mut fields = UserFields {
        active: true,
        ..UserFields::default()
    };
    for (key, value) in body.as_object().into_iter().flatten() {
        set_user(&mut fields, key, value, false)?;
    }
    if fields.user_name.is_empty() {
        fields.user_name = fields.emails.first().cloned().unwrap_or_default();
    }
    Ok(fields)
}

/// Sets (or with `remove`, clears) one attribute named by a path; unknown ones are ignored.
fn set_user(
    fields: &mut UserFields,
    path: &str,
    value: &Value,
    remove: bool,
) -> Result<(), Refusal> {
    let path = path.to_lowercase();
    let path = match path.rfind(':') {
        Some(at) if path.starts_with("urn:") => &path[at + 1..],
        _ => path.as_str(),
    };
    let cleared = |v: &Value| if remove { None } else { text(v) };
    match path {
        "username" => fields.user_name = cleared(value).unwrap_or_default(),
        "displayname" => fields.display_name = cleared(value),
        "externalid" => fields.external_id = cleared(value),
        "name.givenname" => fields.given_name = cleared(value),
        "name.familyname" => fields.family_name = cleared(value),
        "name" => {
            fields.given_name = if remove {
                None
            } else {
                text(&value["givenName"])
            };
            fields.family_name = if remove {
                None
            } else {
                text(&value["familyName"])
            };
        }
        "active" if !remove => fields.active = boolean(value)?,
        p if !remove && (p == "emails" || p.starts_with("emails[") || p == "emails.value") => {
            let found = emails(value);
            if !found.is_empty() {
                fields.emails = found;
            }
        }
        _ => {}
    }
    Ok(())
}

fn operations(body: &Value) -> Result<&Vec<Value>, Refusal> {
    body.get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array)
        .ok_or_else(|| Refusal::invalid("invalidSyntax", "A PATCH body needs an Operations list."))
}

/// `add`, `replace` or `remove`, in any case.
fn op_of(operation: &Value) -> Result<String, Refusal> {
    let op = operation["op"].as_str().unwrap_or_default().to_lowercase();
    match op.as_str() {
        "add" | "replace" | "remove" => Ok(op),
        _ => Err(Refusal::invalid(
            "invalidSyntax",
            format!(
                "Unknown PATCH op {}: use add, replace or remove.",
                operation["op"]
            ),
        )),
    }
}

/// Applies a PATCH to a user's fields.
pub fn patch_user(fields: &mut UserFields, body: &Value) -> Result<(), Refusal> {
    for operation in operations(body)? {
        let remove = op_of(operation)? == "remove";
        let value = &operation["value"];
        match operation["path"].as_str().filter(|p| !p.trim().is_empty()) {
            Some(path) => set_user(fields, path.trim(), value, remove)?,
            None => match value {
                Value::Object(map) => {
                    for (key, value) in map {
                        set_user(fields, key, value, remove)?;
                    }
                }
                _ => {
                    return Err(Refusal::invalid(
                        "invalidSyntax",
                        "A PATCH operation without a path needs an object value.",
                    ))
                }
            },
        }
    }
    Ok(())
}

fn member_ids(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().filter_map(|m| text(&m["value"])).collect(),
        Value::Object(_) => text(&value["value"]).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A whole group from a POST or PUT body.
pub fn group_fields(body: &Value) -> Result<GroupFields, Refusal> {
    if !body.is_object() {
        return Err(Refusal::invalid(
            "invalidSyntax",
            "The body must be a JSON object.",
        ));
    }
    Ok(GroupFields {
        display_name: text(&body["displayName"]).unwrap_or_default(),
        external_id: text(&body["externalId"]),
        members: member_ids(&body["members"]),
    })
}

/// `members[value eq "id"]` → the id.
fn filtered_member(path: &str) -> Option<String> {
    let inner = path.strip_prefix("members[")?.strip_suffix(']')?;
    let conditions = super::filter::parse(inner).ok()?;
    conditions
        .into_iter()
        .find(|c| c.attribute == "value")
        .map(|c| c.value)
}

/// Applies a PATCH to a group's fields.
pub fn patch_group(fields: &mut GroupFields, body: &Value) -> Result<(), Refusal> {
    for operation in operations(body)? {
        let op = op_of(operation)?;
        let value = &operation["value"];
        let path = operation["path"]
            .as_str()
            .map(str::trim)
            .unwrap_or_default();
        let lower = path.to_lowercase();
        if path.is_empty() {
            let Value::Object(map) = value else {
                return Err(Refusal::invalid(
                    "invalidSyntax",
                    "A PATCH operation without a path needs an object value.",
                ));
            };
            for (key, value) in map {
                match key.to_lowercase().as_str() {
                    "displayname" => {
                        if let Some(name) = text(value) {
                            fields.display_name = name;
                        }
                    }
                    "externalid" => fields.external_id = text(value),
                    "members" => apply_members(fields, &op, member_ids(value)),
                    _ => {}
                }
            }
        } else if lower == "displayname" {
            if let Some(name) = text(value) {
                fields.display_name = name;
            }
        } else if lower == "externalid" {
            fields.external_id = if op == "remove" { None } else { text(value) };
        } else if lower == "members" {
            if op == "remove" && value.is_null() {
                fields.members.clear();
            } else {
                apply_members(fields, &op, member_ids(value));
            }
        } else if let Some(id) = lower
            .starts_with("members[")
            .then(|| filtered_member(path))
            .flatten()
        {
            if op == "remove" {
                fields.members.retain(|m| *m != id);
            } else {
                apply_members(fields, "add", vec![id]);
            }
        } else {
            return Err(Refusal::invalid(
                "invalidPath",
                format!(
                    "A group's {path} cannot be changed: displayName, externalId and members can."
                ),
            ));
        }
    }
    Ok(())
}

fn apply_members(fields: &mut GroupFields, op: &str, ids: Vec<String>) {
    match op {
        "replace" => fields.members = ids,
        "remove" => fields.members.retain(|m| !ids.contains(m)),
        _ => {
            for id in ids {
                if !fields.members.contains(&id) {
                    fields.members.push(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn okta_user() -> UserFields {
        user_fields(&json!({
            "schemas": [USER], "userName": "test.user@okta.local",
            "name": { "givenName": "Test", "familyName": "User" },
            "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
            "displayName": "Test User", "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [], "password": "1mz050nq", "active": true
        }))
        .unwrap()
    }

    #[test]
    fn an_okta_create_reads_every_field_and_drops_the_password() {
        let fields = okta_user();
        assert_eq!(fields.identity().as_deref(), Some("test.user@okta.local"));
        assert_eq!(fields.given_name.as_deref(), Some("Test"));
        assert_eq!(fields.external_id.as_deref(), Some("00ujl29u0le5T6Aj10h7"));
        assert!(fields.active);
        assert!(!format!("{fields:?}").contains("1mz050nq"));
    }

    #[test]
    fn patches_as_okta_and_entra_send_them() {
        let mut fields = okta_user();
        patch_user(
            &mut fields,
            &json!({ "Operations": [{ "op": "replace", "value": { "active": false } }] }),
        )
        .unwrap();
        assert!(!fields.active);
        patch_user(
            &mut fields,
            &json!({ "Operations": [{ "op": "Replace", "path": "active", "value": "True" }] }),
        )
        .unwrap();
        assert!(fields.active);
        patch_user(&mut fields, &json!({ "Operations": [{ "op": "replace", "value": {
            "name.givenName": "Kkom", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1"
        } }] })).unwrap();
        assert_eq!(fields.given_name.as_deref(), Some("Kkom"));
        patch_user(&mut fields, &json!({ "Operations": [{ "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@okta.local" }] })).unwrap();
        assert_eq!(fields.emails, vec!["new@okta.local".to_owned()]);
        assert!(patch_user(
            &mut fields,
            &json!({ "Operations": [{ "op": "frobnicate", "path": "active" }] })
        )
        .is_err());
        assert!(patch_user(
            &mut fields,
            &json!({ "Operations": [{ "op": "replace", "path": "active", "value": "maybe" }] })
        )
        .is_err());
    }

    #[test]
    fn group_membership_patches_in_every_dialect() {
        let mut group = group_fields(&json!({ "displayName": "Eng", "members": [] })).unwrap();
        let patch = |g: &mut GroupFields, ops: Value| {
            patch_group(g, &json!({ "Operations": ops })).unwrap()
        };
        patch(
            &mut group,
            json!([{ "op": "Add", "path": "members", "value": [{ "$ref": null, "value": "a" }, { "value": "b" }] }]),
        );
        assert_eq!(group.members, vec!["a", "b"]);
        patch(
            &mut group,
            json!([{ "op": "remove", "path": "members[value eq \"a\"]" }]),
        );
        assert_eq!(group.members, vec!["b"]);
        patch(
            &mut group,
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": "b" }] }]),
        );
        assert!(group.members.is_empty());
        patch(
            &mut group,
            json!([{ "op": "replace", "value": { "id": "ignored", "displayName": "Engineering" } }]),
        );
        assert_eq!(group.display_name, "Engineering");
        patch(
            &mut group,
            json!([{ "op": "replace", "path": "members", "value": [{ "value": "c" }] }]),
        );
        assert_eq!(group.members, vec!["c"]);
    }
}
