//! The Compliance API's Activity Feed (§8.5): `GET /v1/compliance/activities`.
//!
//! Every change made through the simulated Admin API appends one activity (with an
//! `admin_api_key_actor`), every change made "in the Console" (`RunningSimulator::console`) one
//! with a `user_actor`, and every read of the feed a `compliance_api_accessed` row, as the real
//! feed does. Whether the admin key may read the feed is a switch
//! (`RunningSimulator::set_activity_feed`): off answers 403 `permission_error` like a key
//! created before the Compliance API was enabled. Activities are recorded either way.

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use serde_json::{json, Map, Value};

use super::http::{bad_enum, ts, ApiError, ApiResult, Query};
use super::state::OrgState;

pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 5000;
/// The address and browser the Console helpers act from unless told otherwise.
pub const CONSOLE_IP: &str = "203.0.113.9";
pub(crate) const CONSOLE_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) Console";

#[derive(Debug, Clone)]
pub(crate) struct Activity {
    pub seq: u64,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub actor: Value,
    pub kind: String,
    /// The type-specific fields, at the top level next to `type` when served.
    pub fields: Map<String, Value>,
}

impl Activity {
    fn json(&self, org_id: &str) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("created_at".into(), json!(ts(self.created_at)));
        out.insert("organization_id".into(), json!(org_id));
        out.insert("organization_uuid".into(), Value::Null);
        out.insert("actor".into(), self.actor.clone());
        out.insert("type".into(), json!(self.kind));
        for (k, v) in &self.fields {
            out.insert(k.clone(), v.clone());
        }
        Value::Object(out)
    }

    fn user_id(&self) -> Option<&str> {
        self.actor.get("user_id").and_then(Value::as_str)
    }
}

/// Who made a request, for the activity it leaves.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub admin_api_key_id: String,
    pub ip_address: String,
    pub user_agent: String,
}

impl Caller {
    pub fn admin_actor(&self) -> Value {
        json!({
            "type": "admin_api_key_actor",
            "admin_api_key_id": self.admin_api_key_id,
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
        })
    }
    /// Compliance API calls made with an Admin key are recorded with an `api_actor`.
    pub fn api_actor(&self) -> Value {
        json!({
            "type": "api_actor",
            "api_key_id": self.admin_api_key_id,
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
        })
    }
}

/// A stable id for an admin key (the docs do not show their prefix; `apikey_` is a guess).
pub(crate) fn admin_key_id(key: &str) -> String {
    // FNV-1a: stable across runs, unlike the std hasher.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(hash);
    super::state::tagged_id(&mut rng, "apikey")
}

/// A signed-in Console user's actor.
pub(crate) fn user_actor(st: &OrgState, user_id: &str, ip_address: &str) -> Value {
    json!({
        "type": "user_actor",
        "email_address": st.user(user_id).map(|u| u.email.clone()),
        "user_id": user_id,
        "ip_address": ip_address,
        "user_agent": CONSOLE_USER_AGENT,
    })
}

/// Appends one activity. Ids come from their own generator so that recording activities does
/// not change the ids the seeded organization hands out next.
pub(crate) fn append(
    st: &mut OrgState,
    now: DateTime<Utc>,
    actor: Value,
    kind: &str,
    fields: Value,
) {
    if !st.recording_activities && kind != "compliance_api_accessed" {
        return;
    }
    // Its own sequence: recording activities leaves the organization's seqs as they were.
    let seq = st.activities.len() as u64 + 1;
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(st.seed ^ seq.wrapping_mul(0xA24B_AED4_963E_E407));
    let id = super::state::tagged_id(&mut rng, "activity");
    let fields = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    st.activities.push(Activity {
        seq,
        id,
        created_at: now,
        actor,
        kind: kind.to_owned(),
        fields,
    });
}

fn update(kind: &str, before: &Value, after: &Value, field: &str) -> Option<Value> {
    let (b, a) = (before.get(field)?, after.get(field)?);
    (b != a).then(|| json!({ "type": kind, "previous_value": b, "current_value": a }))
}

/// The activity a successful Admin API change leaves: its type and type-specific fields.
/// `before` is the object as it was (for updates and deletions), `result` the answer.
pub(crate) fn of_change(
    method: &str,
    segs: &[&str],
    before: Option<&Value>,
    result: &Value,
) -> Option<(&'static str, Value)> {
    let null = Value::Null;
    let before = before.unwrap_or(&null);
    Some(match (method, segs) {
        ("POST", ["users", id]) => (
            "claude_user_role_updated",
            json!({ "user_id": id, "user_email": result["email"],
                    "previous_role": before["role"], "current_role": result["role"] }),
        ),
        ("DELETE", ["users", id]) => (
            "org_user_deleted",
            json!({ "deleted_user_id": id, "deleted_user_email": before["email"] }),
        ),
        ("POST", ["invites"]) => (
            "org_user_invite_sent",
            json!({ "invited_email": result["email"], "invited_role": result["role"] }),
        ),
        ("DELETE", ["invites", id]) => ("org_user_invite_deleted", json!({ "invite_id": id })),
        ("POST", ["workspaces"]) => (
            "platform_workspace_created",
            json!({ "workspace_id": result["id"] }),
        ),
        ("POST", ["workspaces", id]) => {
            let updates: Vec<Value> = ["name", "display_color"]
                .iter()
                .filter_map(|f| update(f, before, result, f))
                .collect();
            (
                "platform_workspace_updated",
                json!({ "workspace_id": id, "updates": updates }),
            )
        }
        ("POST", ["workspaces", id, "archive"]) => {
            ("platform_workspace_archived", json!({ "workspace_id": id }))
        }
        ("POST", ["workspaces", id, "members"]) => (
            "platform_workspace_member_added",
            json!({ "workspace_id": id, "user_id": result["user_id"] }),
        ),
        ("POST", ["workspaces", id, "members", uid]) => (
            "platform_workspace_member_updated",
            json!({ "workspace_id": id, "user_id": uid,
                    "updates": update("workspace_role", before, result, "workspace_role").into_iter().collect::<Vec<_>>() }),
        ),
        ("DELETE", ["workspaces", id, "members", uid]) => (
            "platform_workspace_member_removed",
            json!({ "workspace_id": id, "user_id": uid }),
        ),
        ("POST", ["workspaces", id, "rate_limits", _]) => (
            "platform_workspace_rate_limit_updated",
            json!({ "workspace_id": id }),
        ),
        ("POST", ["api_keys", id]) => {
            let updates: Vec<Value> = ["name", "status"]
                .iter()
                .filter_map(|f| update(f, before, result, f))
                .collect();
            (
                "platform_api_key_updated",
                json!({ "api_key_id": id, "updates": updates }),
            )
        }
        ("POST", ["spend_limits"]) => {
            let created = result["created_at"] == result["updated_at"];
            let workspace = result["scope"]["workspace_id"].clone();
            let kind = match (workspace.is_null(), created) {
                (true, true) => "platform_spend_limit_created",
                (true, false) => "platform_spend_limit_updated",
                // The feed has no workspace "updated": a new amount replaces the limit.
                (false, _) => "workspace_spend_limit_created",
            };
            (
                kind,
                json!({ "spend_limit_id": result["id"], "workspace_id": workspace }),
            )
        }
        ("DELETE", ["spend_limits", id]) => {
            let workspace = before["scope"]["workspace_id"].clone();
            let kind = if workspace.is_null() {
                "platform_spend_limit_deleted"
            } else {
                "workspace_spend_limit_deleted"
            };
            (
                kind,
                json!({ "spend_limit_id": id, "workspace_id": workspace }),
            )
        }
        _ => return None,
    })
}

fn time_param(q: &Query, name: &str) -> ApiResult<Option<DateTime<Utc>>> {
    match q.get(name) {
        None => Ok(None),
        Some(raw) => DateTime::parse_from_rfc3339(raw)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::invalid(format!(
                    "{name}: Input should be a valid RFC 3339 datetime; got '{raw}'"
                ))
            }),
    }
}

/// `GET /v1/compliance/activities`: newest first unless `order=asc`; cursors relative to the
/// order; only what the feed's delay has let through by `now`. Access is checked by the caller.
pub(crate) fn list(st: &OrgState, q: &Query, now: DateTime<Utc>) -> ApiResult<Value> {
    let limit = q.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let ascending = match q.get("order") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => return Err(bad_enum("order", other, &["asc", "desc"])),
    };
    let types = q.all("activity_types");
    let excluded = q.all("exclude_activity_types");
    if !types.is_empty() && !excluded.is_empty() {
        return Err(ApiError::invalid(
            "activity_types and exclude_activity_types cannot be used together",
        ));
    }
    let mut actors = q.all("actor_ids");
    actors.extend(q.all("user_ids"));
    let bounds = [
        ("created_at.gte", time_param(q, "created_at.gte")?),
        ("created_at.gt", time_param(q, "created_at.gt")?),
        ("created_at.lte", time_param(q, "created_at.lte")?),
        ("created_at.lt", time_param(q, "created_at.lt")?),
    ];
    let in_time = |t: DateTime<Utc>| {
        bounds.iter().all(|(name, bound)| match (name, bound) {
            (_, None) => true,
            (&"created_at.gte", Some(b)) => t >= *b,
            (&"created_at.gt", Some(b)) => t > *b,
            (&"created_at.lte", Some(b)) => t <= *b,
            (_, Some(b)) => t < *b,
        })
    };
    let cursor = |id: &str| {
        st.activities
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.seq)
            .ok_or_else(|| ApiError::invalid(format!("Invalid cursor: {id}")))
    };
    let (after, before) = match (q.get("after_id"), q.get("before_id")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "after_id and before_id cannot be used together",
            ))
        }
        (a, b) => (a.map(cursor).transpose()?, b.map(cursor).transpose()?),
    };
    // "Further along the order" than a cursor's seq.
    let beyond = |seq: u64, c: u64| if ascending { seq > c } else { seq < c };
    let mut items: Vec<_> = st
        .activities
        .iter()
        .filter(|a| types.is_empty() || types.contains(&a.kind))
        .filter(|a| !excluded.contains(&a.kind))
        .filter(|a| actors.is_empty() || a.user_id().is_some_and(|u| actors.iter().any(|x| x == u)))
        .filter(|a| in_time(a.created_at))
        .filter(|a| a.created_at + st.activity_delay <= now)
        .filter(|a| after.is_none_or(|c| beyond(a.seq, c)))
        .filter(|a| before.is_none_or(|c| beyond(c, a.seq)))
        .collect();
    if !ascending {
        items.reverse();
    }
    let (page, has_more) = if before.is_some() {
        // The page just before the cursor: the items closest to it.
        let start = items.len().saturating_sub(limit);
        (&items[start..], start > 0)
    } else {
        let end = limit.min(items.len());
        (&items[..end], end < items.len())
    };
    Ok(json!({
        "data": page.iter().map(|a| a.json(&st.org_id)).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": page.first().map(|a| a.id.clone()),
        "last_id": page.last().map(|a| a.id.clone()),
    }))
}

/// The 403 a key without the `read:compliance_activities` scope gets.
pub(crate) fn missing_scope() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "permission_error",
        "Missing required scopes. Got: [] Needed: ['read:compliance_activities']",
    )
}
