//! The usage and cost reports (§5.7, §5.8), answered from Orgkeeper's usage store: the same
//! numbers the pages show, with no upstream call. The store keeps daily and hourly usage by
//! model, workspace, key, service tier and context window, and daily cost by workspace and
//! description; a query for anything else is refused with a sentence saying what is kept.

use axum::http::Uri;
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};

use super::{internal, model, query, Door, Reply};
use crate::auth::Permission;
use crate::contract::{bad_enum, ts_secs, ApiError, ApiResult, Query};
use crate::org::names::ReportNames;
use crate::usage_store::{floor, Dim, UsageFilter};

/// The usage report's group-by values Orgkeeper keeps, with their store dimension.
const USAGE_GROUPS: &[(&str, Dim)] = &[
    ("api_key_id", Dim::ApiKey),
    ("workspace_id", Dim::Workspace),
    ("model", Dim::Model),
    ("service_tier", Dim::ServiceTier),
    ("context_window", Dim::ContextWindow),
];

/// Its filters, likewise.
const USAGE_FILTERS: &[(&str, Dim)] = &[
    ("api_key_ids", Dim::ApiKey),
    ("workspace_ids", Dim::Workspace),
    ("models", Dim::Model),
    ("service_tiers", Dim::ServiceTier),
    ("context_window", Dim::ContextWindow),
];

/// Parameters the real report takes that the store cannot answer.
const NOT_KEPT: &[&str] = &[
    "inference_geos",
    "speeds",
    "account_ids",
    "service_account_ids",
];

fn time(q: &Query, name: &str) -> ApiResult<Option<DateTime<Utc>>> {
    q.get(name)
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::invalid(format!(
                        "{name}: Input should be a valid datetime (RFC 3339)"
                    ))
                })
        })
        .transpose()
}

/// A report's page: one bucket per step of the window, each with the results `results_before`
/// gives for it (called in order, with the bucket's end).
fn report_page(w: &Window, mut results_before: impl FnMut(DateTime<Utc>) -> Vec<Value>) -> Value {
    let mut data = Vec::new();
    let mut at = w.start;
    while at < w.end {
        data.push(json!({
            "starting_at": ts_secs(at),
            "ending_at": ts_secs(at + w.step),
            "results": results_before(at + w.step),
        }));
        at += w.step;
    }
    json!({ "data": data, "has_more": w.next.is_some(), "next_page": page_token(w.next) })
}

/// The buckets a page covers: from the page token (or `starting_at`, snapped down) for at
/// most `limit` buckets, before `ending_at` (or now).
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// Where the next page starts, if anything is left.
    next: Option<DateTime<Utc>>,
    step: Duration,
}

fn window(q: &Query, now: DateTime<Utc>, width: &str, limits: (usize, usize)) -> ApiResult<Window> {
    let step = match width {
        "1h" => Duration::hours(1),
        _ => Duration::days(1),
    };
    let starting =
        time(q, "starting_at")?.ok_or_else(|| ApiError::invalid("starting_at: Field required"))?;
    let ending = time(q, "ending_at")?.unwrap_or(now).min(now + step);
    if ending <= starting {
        return Err(ApiError::invalid("ending_at must be after starting_at"));
    }
    let start = match q.get("page") {
        Some(token) => token
            .strip_prefix("page_")
            .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| ApiError::invalid("page: not a page token of this report"))?,
        None => floor(starting, step.num_seconds()),
    };
    let limit = q.limit(limits.0, limits.1)?;
    let end = (start + step * limit as i32).min(ending);
    Ok(Window {
        start,
        end,
        next: (end < ending).then_some(end),
        step,
    })
}

fn page_token(next: Option<DateTime<Utc>>) -> Value {
    next.map_or(Value::Null, |t| {
        json!(format!(
            "page_{}",
            base64::engine::general_purpose::STANDARD.encode(ts_secs(t))
        ))
    })
}

/// The workspaces a caller may read, as the store keeps them ('' = the default workspace).
fn stored_scope(door: &Door, names: &ReportNames) -> Option<Vec<String>> {
    door.caller
        .workspace_scope()
        .map(|ids| ids.iter().map(|id| names.stored_ws(id)).collect())
}

pub async fn usage(door: Door, uri: Uri) -> Reply {
    let result = async {
        door.require(Permission::ViewUsage).await?;
        let q = query(&uri);
        if let Some(name) = NOT_KEPT.iter().find(|n| !q.all(n).is_empty()) {
            return Err(ApiError::invalid(format!(
                "{name}: Orgkeeper keeps usage by model, workspace, API key, service tier and context window only"
            )));
        }
        let width = q.get("bucket_width").unwrap_or("1d");
        let limits = match width {
            "1d" => (7, 31),
            "1h" => (24, 168),
            "1m" => {
                return Err(ApiError::invalid(
                    "bucket_width: Orgkeeper keeps hourly and daily usage; minutes are read from Anthropic on the Usage page",
                ))
            }
            other => return Err(bad_enum("bucket_width", other, &["1d", "1h", "1m"])),
        };
        let now = door.services.clock.now();
        let w = window(&q, now, width, limits)?;
        let hourly_from = now - Duration::days(i64::from(door.services.config.usage_hourly_days));
        if width == "1h" && w.start < floor(hourly_from, 3600) {
            return Err(ApiError::invalid(format!(
                "starting_at: Orgkeeper keeps hourly usage for the last {} days; use bucket_width=1d before that",
                door.services.config.usage_hourly_days
            )));
        }
        let allowed: Vec<&str> = USAGE_GROUPS.iter().map(|(n, _)| *n).collect();
        let mut groups = Vec::new();
        for g in q.all("group_by") {
            let (_, dim) = USAGE_GROUPS
                .iter()
                .find(|(name, _)| *name == g)
                .ok_or_else(|| bad_enum("group_by", &g, &allowed))?;
            if !groups.contains(dim) {
                groups.push(*dim);
            }
        }
        let names = ReportNames::of(&*model(&door)?);
        let mut filter = UsageFilter {
            by: Vec::new(),
            workspaces: stored_scope(&door, &names),
        };
        for (param, dim) in USAGE_FILTERS {
            let values = q.all(param);
            if values.is_empty() {
                continue;
            }
            let values = match dim {
                Dim::Workspace => values.iter().map(|w| names.stored_ws(w)).collect(),
                _ => values,
            };
            filter.by.push((*dim, values));
        }
        let rows = door
            .services
            .usage
            .report_rows(width, w.start, w.end, &groups, &filter)
            .await
            .map_err(internal)?;
        let mut rows = rows.into_iter().peekable();
        Ok(report_page(&w, |end| {
            let mut results = Vec::new();
            while let Some(row) = rows.next_if(|r| r.start < end) {
                let value = |dim: Dim| -> Value {
                    match groups.iter().position(|d| *d == dim) {
                        Some(i) if !row.groups[i].is_empty() => json!(row.groups[i]),
                        _ => Value::Null,
                    }
                };
                results.push(json!({
                    "uncached_input_tokens": row.uncached,
                    "cache_creation": {
                        "ephemeral_1h_input_tokens": row.cache_write_1h,
                        "ephemeral_5m_input_tokens": row.cache_write_5m,
                    },
                    "cache_read_input_tokens": row.cache_read,
                    "output_tokens": row.output,
                    "server_tool_use": { "web_search_requests": row.web_search },
                    "api_key_id": value(Dim::ApiKey),
                    "workspace_id": value(Dim::Workspace),
                    "model": value(Dim::Model),
                    "service_tier": value(Dim::ServiceTier),
                    "context_window": value(Dim::ContextWindow),
                }));
            }
            results
        }))
    }
    .await;
    door.reply(result)
}

pub async fn cost(door: Door, uri: Uri) -> Reply {
    let result = async {
        door.require(Permission::ViewUsage).await?;
        let q = query(&uri);
        if let Some(width) = q.get("bucket_width").filter(|w| *w != "1d") {
            return Err(bad_enum("bucket_width", width, &["1d"]));
        }
        let groups = q.enum_all("group_by", &["workspace_id", "description"])?;
        let by_workspace = groups.iter().any(|g| g == "workspace_id");
        let by_description = groups.iter().any(|g| g == "description");
        let w = window(&q, door.services.clock.now(), "1d", (7, 31))?;
        let names = ReportNames::of(&*model(&door)?);
        let scope = stored_scope(&door, &names);
        let day = |t: DateTime<Utc>| -> NaiveDate { t.date_naive() };
        let lines = door
            .services
            .usage
            .cost_lines(
                day(w.start),
                day(w.end - Duration::nanoseconds(1)) + Duration::days(1),
                scope.as_deref(),
            )
            .await
            .map_err(internal)?;
        // The lines come ordered by day: each bucket takes its day's lines off the front.
        let mut lines = lines.into_iter().peekable();
        let ungrouped = crate::anthropic::Shared::from("");
        Ok(report_page(&w, |end| {
            let mut sums: std::collections::BTreeMap<_, rust_decimal::Decimal> = Default::default();
            while let Some((_, workspace, description, amount)) =
                lines.next_if(|(d, ..)| *d < day(end))
            {
                let key = (
                    if by_workspace {
                        workspace
                    } else {
                        ungrouped.clone()
                    },
                    if by_description {
                        description
                    } else {
                        ungrouped.clone()
                    },
                );
                *sums.entry(key).or_default() += amount;
            }
            sums.into_iter()
                .map(|((workspace, description), amount)| {
                    json!({
                        "currency": "USD",
                        "amount": amount.normalize().to_string(),
                        "workspace_id": (!workspace.is_empty()).then_some(workspace),
                        "description": (!description.is_empty()).then_some(description),
                    })
                })
                .collect()
        }))
    }
    .await;
    door.reply(result)
}
