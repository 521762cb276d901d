//! What the service provider announces (RFC 7643 §5–7): what it supports, its two resource
//! types and their schemas. Identity providers and checkers build their requests from these,
//! so they say exactly what is kept and what may change.

use serde_json::{json, Value};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The most resources one list answers.
pub const MAX_RESULTS: usize = 200;

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": false },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An Orgkeeper SCIM token (orgk_scim_…) in Authorization: Bearer; owners create it on the SCIM page or with `orgkeeper token create NAME --scim`.",
            "primary": true
        }],
        "meta": { "resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig") }
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        resource_type(
            base,
            "User",
            "/Users",
            USER,
            "The organization's people, by e-mail address: a member, or someone invited.",
        ),
        resource_type(
            base,
            "Group",
            "/Groups",
            GROUP,
            "Groups of provisioned people; owners map them to an organization role and workspaces.",
        ),
    ]
}

fn resource_type(base: &str, id: &str, endpoint: &str, schema: &str, description: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": id,
        "name": id,
        "endpoint": endpoint,
        "description": description,
        "schema": schema,
        "schemaExtensions": [],
        "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{id}") }
    })
}

/// One attribute's definition.
fn attribute(name: &str, kind: &str, required: bool, mutability: &str, description: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": required,
        "caseExact": false,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": "none"
    })
}

fn with(mut value: Value, extra: Value) -> Value {
    if let (Value::Object(map), Value::Object(more)) = (&mut value, extra) {
        map.extend(more);
    }
    value
}

pub fn schemas(base: &str) -> Vec<Value> {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER,
        "name": "User",
        "description": "A person of the Anthropic organization, identified by e-mail address: userName when it is an address, otherwise the primary e-mail. Creating one invites them (or links the member or pending invite with that address); active false or deleting one takes them out of the organization through Orgkeeper's offboarding.",
        "attributes": [
            with(attribute("userName", "string", true, "readWrite", "The person's sign-in name, unique; when it is an e-mail address it is the address Anthropic knows them by."), json!({ "uniqueness": "server" })),
            with(attribute("name", "complex", false, "readWrite", "The person's name (kept for the provider; Anthropic takes the name from the person's own account)."), json!({
                "subAttributes": [
                    attribute("givenName", "string", false, "readWrite", "Given name."),
                    attribute("familyName", "string", false, "readWrite", "Family name."),
                    attribute("formatted", "string", false, "readWrite", "The full name, formatted.")
                ]
            })),
            attribute("displayName", "string", false, "readWrite", "The name to show."),
            with(attribute("emails", "complex", true, "readWrite", "The person's addresses; the primary one is the one Anthropic invites. A member's address cannot change (their Anthropic account keeps it: such a change is refused with mutability); a pending invitation is sent again to the new address."), json!({
                "multiValued": true,
                "subAttributes": [
                    attribute("value", "string", true, "readWrite", "The address."),
                    with(attribute("type", "string", false, "readWrite", "Its kind."), json!({ "canonicalValues": ["work", "home", "other"] })),
                    attribute("primary", "boolean", false, "readWrite", "Whether it is the primary address.")
                ]
            })),
            attribute("active", "boolean", false, "readWrite", "false takes the person out of the organization (pending invites deleted, workspace memberships removed, the member removed, their workspace keys deactivated as configured); true again invites them again. Organization admins cannot be removed through the Admin API: such a change is refused with mutability and nothing is done.")
        ],
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{USER}") }
    });
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": GROUP,
        "name": "Group",
        "description": "A group of provisioned people. An owner maps a group, by its displayName, to an organization role and workspaces; the strongest mapping of a person's groups applies.",
        "attributes": [
            with(attribute("displayName", "string", true, "readWrite", "The group's name, unique; mappings name groups by it."), json!({ "uniqueness": "server" })),
            with(attribute("members", "complex", false, "readWrite", "Provisioned users in the group."), json!({
                "multiValued": true,
                "subAttributes": [
                    with(attribute("value", "string", false, "immutable", "The member's SCIM id."), json!({ "caseExact": true })),
                    attribute("display", "string", false, "readOnly", "The member's address."),
                    with(attribute("type", "string", false, "immutable", "Only users are members."), json!({ "canonicalValues": ["User"] })),
                    with(attribute("$ref", "reference", false, "immutable", "The member's URI."), json!({ "referenceTypes": ["User"] }))
                ]
            }))
        ],
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{GROUP}") }
    });
    vec![user, group]
}
