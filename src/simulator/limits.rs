//! Spend limits (§8.1) and workspace rate-limit updates (§8.2) of a simulated Claude Console
//! organization.
//!
//! Spend limits: the organization and its workspaces may carry one monthly limit each (an
//! upsert on scope and period), beside Anthropic's read-only `usage_tier` cap. Whether the
//! organization may use them is [`SpendLimitsAccess`], switchable while the simulator runs, so
//! both the preview and the documented refusals can be tested. Enterprise-only parts
//! (`/effective`, `user` scopes) answer as they would for a Console organization.

use std::str::FromStr;

use axum::http::StatusCode;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::http::{bad_enum, ts, ApiError, ApiResult, Query};
use super::state::{OrgState, WorkspaceLimitOverride};
use super::usage::{group_json, RATE_LIMIT_GROUPS};

/// What the simulated organization may do with spend limits through the Admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpendLimitsAccess {
    /// A Console organization in the early-access preview: list, get, set and delete work.
    #[default]
    Preview,
    /// Not in the preview: 403 `spend_limits_admin_api_writes_not_enabled` on every call.
    WritesNotEnabled,
    /// An organization type the endpoints do not serve: 400 `organization_type_not_supported`.
    OrgTypeNotSupported,
}

impl FromStr for SpendLimitsAccess {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "preview" => Ok(Self::Preview),
            "not-enabled" => Ok(Self::WritesNotEnabled),
            "unsupported" => Ok(Self::OrgTypeNotSupported),
            other => Err(format!(
                "unknown spend-limit access '{other}' (expected preview, not-enabled or unsupported)"
            )),
        }
    }
}

pub(crate) const SPEND_LIMIT_READS_BETA: &str = "spend-limit-reads-2026-09-26";
const CONSOLE_SCOPE_TYPES: &[&str] = &["organization", "usage_tier", "workspace"];
const ALL_SCOPE_TYPES: &[&str] = &[
    "organization",
    "organization_service",
    "rbac_group",
    "seat_tier",
    "usage_tier",
    "user",
    "workspace",
];
const PERIODS: &[&str] = &["daily", "weekly", "monthly"];
const LIMITER_TYPES: &[&str] = &[
    "fast_itpmca",
    "fast_otpm",
    "input_tokens_per_minute",
    "input_tokens_per_minute_cache_aware",
    "output_tokens_per_minute",
    "requests_per_minute",
    "tokens_per_day",
    "tokens_per_minute",
    "tool_uses_per_second",
];
/// 2^53 − 1, the documented maximum of a rate-limit value.
const MAX_LIMIT_VALUE: u64 = (1 << 53) - 1;

/// One stored spend limit. `workspace_id: None` is the organization's.
#[derive(Debug, Clone)]
pub(crate) struct SpendLimitRow {
    pub id: String,
    pub workspace_id: Option<String>,
    pub amount_cents: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Anthropic's read-only cap from the usage tier.
#[derive(Debug, Clone)]
pub(crate) struct UsageTierLimit {
    pub id: String,
    pub amount_cents: u64,
    pub since: DateTime<Utc>,
}

fn refusal(st: &OrgState) -> ApiResult<()> {
    match st.spend_access {
        SpendLimitsAccess::Preview => Ok(()),
        SpendLimitsAccess::WritesNotEnabled => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "This organization cannot manage spend limits with an Admin API key. Spend limits through the Admin API are in an early access preview; contact your account team.",
        )
        .with_code("spend_limits_admin_api_writes_not_enabled")),
        SpendLimitsAccess::OrgTypeNotSupported => Err(not_supported()),
    }
}

fn not_supported() -> ApiError {
    ApiError::invalid("This endpoint is not available for this organization type.")
        .with_code("organization_type_not_supported")
}

fn limit_json(l: &SpendLimitRow) -> Value {
    let scope = match &l.workspace_id {
        Some(w) => json!({"type": "workspace", "workspace_id": w}),
        None => json!({"type": "organization"}),
    };
    json!({
        "type": "spend_limit",
        "id": l.id,
        "amount": l.amount_cents.to_string(),
        "currency": "USD",
        "period": "monthly",
        "scope": scope,
        "is_enabled": true,
        "created_at": ts(l.created_at),
        "updated_at": ts(l.updated_at),
    })
}

fn tier_json(t: &UsageTierLimit) -> Value {
    json!({
        "type": "spend_limit",
        "id": t.id,
        "amount": t.amount_cents.to_string(),
        "currency": "USD",
        "period": "monthly",
        "scope": {"type": "usage_tier"},
        "is_enabled": true,
        "created_at": ts(t.since),
        "updated_at": ts(t.since),
    })
}

/// GET /v1/organizations/spend_limits — newest first, page-cursor, cursors bound to filters.
pub(crate) fn list(st: &OrgState, q: &Query, beta: &[String]) -> ApiResult<Value> {
    if !beta.iter().any(|b| b == SPEND_LIMIT_READS_BETA) {
        return Err(ApiError::invalid(format!(
            "anthropic-beta: this endpoint requires the '{SPEND_LIMIT_READS_BETA}' beta"
        )));
    }
    refusal(st)?;
    let types = q.enum_all("scope_type", ALL_SCOPE_TYPES)?;
    if let Some(t) = types
        .iter()
        .find(|t| !CONSOLE_SCOPE_TYPES.contains(&t.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "scope_type: '{t}' does not apply to this organization"
        )));
    }
    let workspace = q.get("workspace_id");
    let limit = q.limit(20, 1000)?;
    let mut rows: Vec<(DateTime<Utc>, &str, Option<&str>, Value)> = st
        .spend_limits
        .iter()
        .map(|l| {
            let kind = if l.workspace_id.is_some() {
                "workspace"
            } else {
                "organization"
            };
            (l.created_at, kind, l.workspace_id.as_deref(), limit_json(l))
        })
        .collect();
    rows.push((
        st.usage_tier.since,
        "usage_tier",
        None,
        tier_json(&st.usage_tier),
    ));
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let items: Vec<Value> = rows
        .into_iter()
        .filter(|(_, kind, _, _)| types.is_empty() || types.iter().any(|t| t == kind))
        .filter(|(_, _, ws, _)| workspace.is_none_or(|w| *ws == Some(w)))
        .map(|(_, _, _, v)| v)
        .collect();
    // The cursor carries the filters it was made for (the real API refuses a changed query).
    let filters = format!("{}|{}", types.join(","), workspace.unwrap_or(""));
    let offset = match q.get("page") {
        None => 0,
        Some(p) => {
            let bad = || ApiError::invalid(format!("page: invalid page token '{p}'"));
            let raw = p
                .strip_prefix("page_")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(bad)?;
            let (n, f) = raw.split_once(';').ok_or_else(bad)?;
            if f != filters {
                return Err(ApiError::invalid(
                    "page: cursor does not match current query parameters",
                ));
            }
            n.parse::<usize>().map_err(|_| bad())?
        }
    };
    let start = offset.min(items.len());
    let end = start.saturating_add(limit).min(items.len());
    let next = (end < items.len()).then(|| {
        format!(
            "page_{}",
            base64::engine::general_purpose::STANDARD.encode(format!("{end};{filters}"))
        )
    });
    Ok(json!({ "data": items[start..end].to_vec(), "next_page": next }))
}

/// GET /v1/organizations/spend_limits/{id}
pub(crate) fn get(st: &OrgState, id: &str) -> ApiResult<Value> {
    refusal(st)?;
    if id == st.usage_tier.id {
        return Ok(tier_json(&st.usage_tier));
    }
    st.spend_limits
        .iter()
        .find(|l| l.id == id)
        .map(limit_json)
        .ok_or_else(|| ApiError::not_found(format!("Spend limit not found: {id}")))
}

/// POST /v1/organizations/spend_limits — upsert on (scope, period).
pub(crate) fn set(
    st: &mut OrgState,
    map: &Map<String, Value>,
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    refusal(st)?;
    let amount = match map.get("amount") {
        None => return Err(ApiError::invalid("amount: Field required")),
        Some(Value::Null) => {
            return Err(ApiError::invalid(
                "amount: organization and workspace spend limits must have an amount",
            ))
        }
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::invalid("amount: Input should be a valid string")),
    };
    let amount_cents = match amount.parse::<u64>() {
        Ok(n) if !amount.starts_with('+') => n,
        _ => {
            return Err(ApiError::invalid(format!(
                "amount: '{amount}' is not a non-negative integer amount in cents"
            )))
        }
    };
    match map.get("period") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) if p == "monthly" => {}
        Some(Value::String(p)) if PERIODS.contains(&p.as_str()) => {
            return Err(ApiError::invalid(format!(
                "period: organization and workspace spend limits are monthly; got '{p}'"
            )))
        }
        Some(Value::String(p)) => return Err(bad_enum("period", p, PERIODS)),
        Some(_) => return Err(ApiError::invalid("period: Input should be a valid string")),
    }
    let scope = match map.get("scope") {
        Some(Value::Object(s)) => s,
        None | Some(Value::Null) => return Err(ApiError::invalid("scope: Field required")),
        Some(_) => return Err(ApiError::invalid("scope: Input should be an object")),
    };
    let workspace_id = match scope.get("type").and_then(Value::as_str) {
        Some("organization") => None,
        Some("workspace") => {
            let id = scope
                .get("workspace_id")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid("scope.workspace_id: Field required"))?;
            let w = st
                .workspace(id)
                .ok_or_else(|| ApiError::not_found(format!("Workspace not found: {id}")))?;
            if w.archived_at.is_some() {
                return Err(ApiError::invalid("The workspace is archived"));
            }
            Some(id.to_owned())
        }
        Some("user") => {
            return Err(ApiError::invalid(
                "scope: user spend limits are not available for this organization",
            ))
        }
        Some(other) => {
            return Err(bad_enum(
                "scope.type",
                other,
                &["user", "organization", "workspace"],
            ))
        }
        None => return Err(ApiError::invalid("scope.type: Field required")),
    };
    if let Some(l) = st
        .spend_limits
        .iter_mut()
        .find(|l| l.workspace_id == workspace_id)
    {
        l.amount_cents = amount_cents;
        l.updated_at = now;
        return Ok(limit_json(l));
    }
    let row = SpendLimitRow {
        id: st.new_id("spl"),
        workspace_id,
        amount_cents,
        created_at: now,
        updated_at: now,
    };
    let v = limit_json(&row);
    st.spend_limits.push(row);
    Ok(v)
}

/// DELETE /v1/organizations/spend_limits/{id}
pub(crate) fn delete(st: &mut OrgState, id: &str) -> ApiResult<Value> {
    refusal(st)?;
    if id == st.usage_tier.id {
        return Err(ApiError::invalid(
            "The usage tier spend limit is set by Anthropic and cannot be deleted",
        ));
    }
    let before = st.spend_limits.len();
    st.spend_limits.retain(|l| l.id != id);
    if st.spend_limits.len() == before {
        return Err(ApiError::not_found(format!("Spend limit not found: {id}")));
    }
    Ok(json!({"id": id, "type": "spend_limit_deleted"}))
}

/// GET /v1/organizations/spend_limits/effective — Claude Enterprise only.
pub(crate) fn effective() -> ApiResult<Value> {
    Err(ApiError::invalid(
        "Effective spend limits are available to Claude Enterprise organizations only.",
    )
    .with_code("organization_type_not_supported"))
}

/// POST /v1/organizations/workspaces/{workspace_id}/rate_limits/{rate_limit_id}: a partial
/// update; `null` clears an override; a value above the organization's is stored (the lower
/// one applies). Answers the group's entry with inherited values beside the overrides.
pub(crate) fn update_workspace_rate_limit(
    st: &mut OrgState,
    workspace_id: &str,
    rate_limit_id: &str,
    map: &Map<String, Value>,
) -> ApiResult<Value> {
    let w = st
        .workspace(workspace_id)
        .ok_or_else(|| ApiError::not_found(format!("Workspace not found: {workspace_id}")))?;
    if w.archived_at.is_some() {
        return Err(ApiError::invalid("The workspace is archived"));
    }
    let group = st
        .rate_limit_ids
        .iter()
        .position(|id| id == rate_limit_id)
        .ok_or_else(|| ApiError::not_found(format!("Rate limit not found: {rate_limit_id}")))?;
    let g = &RATE_LIMIT_GROUPS[group];
    let items = match map.get("limits") {
        Some(Value::Array(items)) => items,
        None => return Err(ApiError::invalid("limits: Field required")),
        Some(_) => return Err(ApiError::invalid("limits: Input should be a valid list")),
    };
    if items.is_empty() || items.len() > 16 {
        return Err(ApiError::invalid(
            "limits: List should have at least 1 item and at most 16 items",
        ));
    }
    let mut changes: Vec<(&'static str, Option<u64>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid(format!("limits.{i}.type: Field required")))?;
        if !LIMITER_TYPES.contains(&kind) {
            return Err(bad_enum(&format!("limits.{i}.type"), kind, LIMITER_TYPES));
        }
        let Some(&(static_kind, _)) = g.limits.iter().find(|(t, _)| *t == kind) else {
            return Err(ApiError::invalid(format!(
                "limits.{i}.type: this rate limit has no '{kind}' limit"
            )));
        };
        let value = match item.get("value") {
            None => {
                return Err(ApiError::invalid(format!(
                    "limits.{i}.value: Field required"
                )))
            }
            Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n <= MAX_LIMIT_VALUE => Some(n),
                _ => {
                    return Err(ApiError::invalid(format!(
                        "limits.{i}.value: Input should be an integer from 0 to {MAX_LIMIT_VALUE}"
                    )))
                }
            },
        };
        changes.push((static_kind, value));
    }
    for (kind, value) in changes {
        st.workspace_limit_overrides.retain(|o| {
            !(o.workspace_id == workspace_id && o.group == group && o.limit_type == kind)
        });
        if let Some(value) = value {
            st.workspace_limit_overrides.push(WorkspaceLimitOverride {
                workspace_id: workspace_id.to_owned(),
                group,
                limit_type: kind,
                value,
            });
        }
    }
    let limits: Vec<Value> = g
        .limits
        .iter()
        .map(|(t, org)| {
            match st.workspace_limit_overrides.iter().find(|o| {
                o.workspace_id == workspace_id && o.group == group && o.limit_type == *t
            }) {
                Some(o) => json!({"type": t, "value": o.value, "org_limit": org, "source": {"type": "workspace"}}),
                None => json!({"type": t, "value": org, "org_limit": org, "source": {"type": "organization"}}),
            }
        })
        .collect();
    Ok(json!({
        "type": "workspace_rate_limit",
        "workspace_id": workspace_id,
        "rate_limit_id": rate_limit_id,
        "group": group_json(g),
        "limits": limits,
        "models": g.models,
    }))
}
