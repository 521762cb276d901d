//! Rate limits and spend limits (§8.1, §8.2): reads from the model, changes through
//! `service::limits`.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::Uri;
use base64::Engine;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{body, changed, hidden, model, query, to_json, upstream, Door, Reply};
use crate::anthropic::{SpendLimit, SpendLimitScope, WorkspaceRateLimit};
use crate::auth::Permission;
use crate::contract::{bad_enum, ApiError, ApiResult, Query};
use crate::service;
use crate::service::limits::{LimitScope, RateLimitTarget};

/// A page-cursor list (§3.3): `limit` omitted → everything at once (rate limits), else pages
/// behind an opaque `next_page`.
fn cursor_page(q: &Query, items: Vec<Value>, default_limit: Option<usize>) -> ApiResult<Value> {
    let start = match q.get("page") {
        None => 0,
        Some(token) => token
            .strip_prefix("page_")
            .and_then(|t| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| ApiError::invalid("page: not a page token from this list"))?,
    };
    let limit = match (q.get("limit"), default_limit) {
        (None, None) => items.len().max(1),
        (_, default) => q.limit(default.unwrap_or(20), 1000)?,
    };
    let end = (start + limit).min(items.len());
    let next = (end < items.len()).then(|| {
        format!(
            "page_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(end.to_string())
        )
    });
    let data: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    Ok(json!({ "data": data, "has_more": next.is_some(), "next_page": next }))
}

// ---- Rate limits ----

pub async fn org_rate_limits(door: Door, uri: Uri) -> Reply {
    let result = async {
        door.require(Permission::ViewDirectory).await?;
        let m = model(&door)?;
        let Some(read) = &m.org_rate_limits else {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "Orgkeeper has not read the organization's rate limits yet.",
            ));
        };
        let entries = (**read).as_ref().map_err(upstream)?;
        let q = query(&uri);
        let group = q.get("group_type");
        let model_name = q.get("model");
        let items = entries
            .iter()
            .filter(|e| group.is_none_or(|g| e.group.kind == g))
            .filter(|e| {
                model_name.is_none_or(|name| {
                    e.models
                        .as_ref()
                        .is_some_and(|ms| ms.iter().any(|m| m == name))
                })
            })
            .map(to_json)
            .collect::<Vec<_>>();
        if model_name.is_some() && items.is_empty() {
            return Err(ApiError::not_found("No rate limits for that model."));
        }
        cursor_page(&q, items, None)
    }
    .await;
    door.reply(result)
}

/// A readable workspace's rate limits as last read (with inherited values).
async fn workspace_limits(door: &Door, id: &str) -> ApiResult<(String, Vec<WorkspaceRateLimit>)> {
    door.require(Permission::ViewWorkspaces).await?;
    let m = model(door)?;
    let workspace = m
        .workspaces
        .iter()
        .find(|w| w.id == id && door.caller.may_touch_workspace(&w.id))
        .ok_or_else(|| hidden(id))?;
    let limits = match m.rate_limits.get(id) {
        Some(Ok(limits)) => limits.clone(),
        Some(Err(message)) => {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                message.clone(),
            ))
        }
        None => Vec::new(),
    };
    Ok((workspace.name.clone(), limits))
}

pub async fn workspace_rate_limits(door: Door, Path(id): Path<String>, uri: Uri) -> Reply {
    let result = async {
        let (_, limits) = workspace_limits(&door, &id).await?;
        let q = query(&uri);
        let inherited = q.bool("include_inherited", false)?;
        let group = q.get("group_type");
        let items = limits
            .into_iter()
            .filter(|e| group.is_none_or(|g| e.group.kind == g))
            .filter_map(|mut e| {
                if !inherited {
                    // Only what the workspace sets itself.
                    e.limits.retain(|l| l.override_value().is_some());
                    if e.limits.is_empty() {
                        return None;
                    }
                }
                Some(to_json(&e))
            })
            .collect();
        cursor_page(&q, items, None)
    }
    .await;
    door.reply(result)
}

/// `{limits: [{type, value|null}, …]}`: each limiter is one change (one audit record), as on
/// the Limits page; the answer is the group's entry after them.
pub async fn update_workspace_rate_limit(
    door: Door,
    Path((id, rate_limit_id)): Path<(String, String)>,
    bytes: Bytes,
) -> Reply {
    let result = async {
        let map = body(&bytes, &["limits"])?;
        let Some(Value::Array(changes)) = map.get("limits") else {
            return Err(ApiError::invalid("limits: Field required"));
        };
        if changes.is_empty() || changes.len() > 16 {
            return Err(ApiError::invalid(
                "limits: List should have at least 1 item and at most 16 items",
            ));
        }
        let mut wanted = Vec::new();
        for change in changes {
            let kind = change["type"]
                .as_str()
                .ok_or_else(|| ApiError::invalid("limits.type: Field required"))?;
            let value = match &change["value"] {
                Value::Null => None,
                v => Some(
                    v.as_u64()
                        .filter(|n| *n <= service::limits::MAX_RATE_LIMIT)
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "limits.value: Input should be an integer from 0 to 2^53-1, or null",
                            )
                        })?,
                ),
            };
            wanted.push((kind.to_owned(), value));
        }
        let (name, limits) = workspace_limits(&door, &id).await?;
        let entry = limits
            .iter()
            .find(|e| e.rate_limit_id == rate_limit_id)
            .ok_or_else(|| hidden(&rate_limit_id))?;
        let group = entry.group.label();
        let mut last = Value::Null;
        for (kind, value) in wanted {
            let current = entry.limits.iter().find(|l| l.kind == kind);
            if current.is_none() {
                let known: Vec<&str> = entry.limits.iter().map(|l| l.kind.as_str()).collect();
                return Err(bad_enum("limits.type", &kind, &known));
            }
            let target = RateLimitTarget {
                workspace_id: &id,
                workspace_name: &name,
                rate_limit_id: &rate_limit_id,
                group: &group,
                kind: &kind,
                before: current.and_then(|l| l.override_value()),
            };
            let change = service::limits::set_workspace_rate_limit(
                &door.services,
                &door.caller,
                &target,
                value,
            )
            .await;
            last = changed(change, &door.caller)?;
        }
        Ok(last)
    }
    .await;
    door.reply(result)
}

// ---- Spend limits ----

/// The spend limits as last read, within the caller's scope (organization-wide ones only for
/// callers with the whole organization).
async fn spend_limits(door: &Door) -> ApiResult<Vec<SpendLimit>> {
    door.require(Permission::ViewUsage).await?;
    let m = model(door)?;
    let Some(read) = &m.spend_limits else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "Orgkeeper has not read the spend limits yet.",
        ));
    };
    let limits = (**read).as_ref().map_err(upstream)?;
    Ok(limits
        .iter()
        .filter(|l| match &l.scope {
            SpendLimitScope::Workspace { workspace_id } => {
                door.caller.may_touch_workspace(workspace_id)
            }
            _ => door.caller.workspace_scope().is_none(),
        })
        .cloned()
        .collect())
}

fn scope_type(scope: &SpendLimitScope) -> String {
    to_json(scope)["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub async fn list_spend_limits(door: Door, uri: Uri) -> Reply {
    let result = async {
        let limits = spend_limits(&door).await?;
        let q = query(&uri);
        let types = q.enum_all("scope_type", &["organization", "usage_tier", "workspace"])?;
        let workspace = q.get("workspace_id");
        let items = limits
            .iter()
            .filter(|l| types.is_empty() || types.contains(&scope_type(&l.scope)))
            .filter(|l| {
                workspace.is_none_or(|w| {
                    matches!(&l.scope, SpendLimitScope::Workspace { workspace_id } if workspace_id == w)
                })
            })
            .map(to_json)
            .collect();
        cursor_page(&q, items, Some(20))
    }
    .await;
    door.reply(result)
}

pub async fn get_spend_limit(door: Door, Path(id): Path<String>) -> Reply {
    let result = async {
        spend_limits(&door)
            .await?
            .iter()
            .find(|l| l.id == id)
            .map(to_json)
            .ok_or_else(|| hidden(&id))
    }
    .await;
    door.reply(result)
}

/// `{amount, scope, period?}`: the organization's or a workspace's monthly limit.
pub async fn set_spend_limit(door: Door, bytes: Bytes) -> Reply {
    let result = async {
        let map = body(&bytes, &["amount", "scope", "period"])?;
        if let Some(period) = map.get("period").and_then(Value::as_str) {
            if period != "monthly" {
                return Err(bad_enum("period", period, &["monthly"]));
            }
        }
        let amount: Decimal = map
            .get("amount")
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
            .filter(|a: &Decimal| a.is_integer() && !a.is_sign_negative())
            .ok_or_else(|| {
                ApiError::invalid("amount: a non-negative whole number of cents, as a string")
            })?;
        let scope: SpendLimitScope = map
            .get("scope")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok())
            .ok_or_else(|| ApiError::invalid("scope: Field required"))?;
        let m = model(&door)?;
        let scope = match scope {
            SpendLimitScope::Organization => LimitScope::Organization,
            SpendLimitScope::Workspace { workspace_id } => {
                let workspace = m
                    .workspaces
                    .iter()
                    .find(|w| w.id == workspace_id && door.caller.may_touch_workspace(&w.id))
                    .ok_or_else(|| hidden(&workspace_id))?;
                LimitScope::Workspace {
                    id: workspace.id.clone(),
                    name: workspace.name.clone(),
                }
            }
            other => {
                return Err(bad_enum(
                    "scope.type",
                    &scope_type(&other),
                    &["organization", "workspace"],
                ))
            }
        };
        let before = spend_limits(&door)
            .await
            .ok()
            .and_then(|limits| service::limits::limit_of(&limits, &scope).cloned());
        let change = service::limits::set_spend_limit(
            &door.services,
            &door.caller,
            &scope,
            before.as_ref(),
            amount,
            json!({}),
        )
        .await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

pub async fn delete_spend_limit(door: Door, Path(id): Path<String>) -> Reply {
    let result = async {
        let limits = spend_limits(&door).await?;
        let limit = limits
            .iter()
            .find(|l| l.id == id)
            .ok_or_else(|| hidden(&id))?;
        let m = model(&door)?;
        let scope = match &limit.scope {
            SpendLimitScope::Organization => LimitScope::Organization,
            SpendLimitScope::Workspace { workspace_id } => LimitScope::Workspace {
                id: workspace_id.clone(),
                name: m
                    .workspaces
                    .iter()
                    .find(|w| &w.id == workspace_id)
                    .map_or(workspace_id.clone(), |w| w.name.clone()),
            },
            _ => {
                return Err(ApiError::invalid(
                    "Anthropic's usage-tier limit cannot be deleted.",
                ))
            }
        };
        let change =
            service::limits::remove_spend_limit(&door.services, &door.caller, &scope, limit).await;
        changed(change, &door.caller)
    }
    .await;
    door.reply(result)
}

/// Effective per-member limits exist only for Claude Enterprise organizations (§8.1).
pub async fn effective(door: Door) -> Reply {
    let result = async {
        door.require(Permission::ViewUsage).await?;
        Err(
            ApiError::invalid("This endpoint is not available for this organization type.")
                .with_code("organization_type_not_supported"),
        )
    }
    .await;
    door.reply(result)
}
