//! The Usage and Cost Analytics API (§8.6.1): `GET /v1/organizations/analytics/usage` and
//! `/analytics/cost`, behind the `analytics-usage-cost-2026-08-24` beta header.
//!
//! Computed from the same combos and the same pure usage function as the usage and cost
//! reports (`usage.rs`), so for any period the rows add up exactly to those reports' totals.
//! Each combo's usage belongs to one actor: the person or service account its key acts as,
//! the key itself for a legacy workspace key (`api_actor`), or the member whose Console use
//! it is. Rows are every combination of the `group_by[]` values (and time bucket) that has
//! usage, ranked by a metric and cut into pages with an opaque cursor bound to the query.
//!
//! Without the beta header the answer is a 400 `invalid_request_error` naming the header, as
//! for the simulator's other betas (the real answer is not documented).

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::http::{bad_enum, ts_secs, ApiError, ApiResult, Query};
use super::state::{Combo, OrgState, Principal};
use super::usage::{
    cents, cost_lines, is_idle, parse_time, snap, Fields, UsageCalc, Width, CACHE_READ, CW_1H,
    CW_5M, MODELS, OUTPUT, REQUESTS, UNCACHED, WEB_SEARCH,
};

pub(crate) const ANALYTICS_BETA: &str = "analytics-usage-cost-2026-08-24";

/// Every `group_by[]` value of the usage endpoint, in the order rows carry them.
const GROUP_BY: &[&str] = &[
    "actor",
    "actor_type",
    "agent_id",
    "api_key_id",
    "claude_tag_category",
    "claude_tag_user_id",
    "context_window",
    "deployment_id",
    "environment_id",
    "inference_geo",
    "model",
    "organization_id",
    "product",
    "rbac_group_id",
    "service_tier",
    "session_id",
    "slack_channel_id",
    "speed",
    "user_profile_id",
    "workspace_id",
];
/// Cost only; they fan a row out and count neither toward the five nor toward `limit`.
const COST_FAN_OUT: &[&str] = &["cost_type", "token_type"];
const MAX_GROUP_BY: usize = 5;
const ACTOR_TYPES: &[&str] = &[
    "user_actor",
    "service_account_actor",
    "federated_actor",
    "api_actor",
];
const PRODUCTS: &[&str] = &[
    "chat",
    "chat_cowork_unified",
    "claude_code",
    "claude_console",
    "claude_design",
    "claude_in_chrome",
    "claude_tag",
    "cowork",
    "managed_agents_api",
    "message_batches_api",
    "messages_api",
    "office_agent",
];
// The same values as the usage report's filters.
use super::usage::{CONTEXT_WINDOWS, INFERENCE_GEOS, SERVICE_TIERS, SPEEDS};
const TAG_CATEGORIES: &[&str] = &["dm", "engaged", "monitoring", "proactive", "scheduled"];
/// Filters on dimensions this organization's usage never has (managed agents, Slack, RBAC
/// groups, profiles): accepted, and they match nothing.
const EMPTY_DIMENSIONS: &[&str] = &[
    "agent_ids",
    "deployment_ids",
    "environment_ids",
    "session_ids",
    "user_profile_ids",
    "rbac_group_ids",
    "slack_channel_ids",
    "claude_tag_user_ids",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    Usage,
    Cost,
}

impl Report {
    pub fn of(path: &str) -> Option<Report> {
        match path {
            "usage" => Some(Report::Usage),
            "cost" => Some(Report::Cost),
            _ => None,
        }
    }

    fn order_by(self) -> &'static [&'static str] {
        match self {
            Report::Usage => &[
                "total_tokens",
                "output_tokens",
                "requests",
                "uncached_input_tokens",
                "time",
            ],
            Report::Cost => &["amount", "list_amount", "time"],
        }
    }
}

/// Who a combo's usage is attributed to.
#[derive(Clone, Debug)]
enum Actor {
    User {
        id: String,
        email: Option<String>,
        name: Option<String>,
        deleted: bool,
    },
    ServiceAccount(String),
    Api(String),
}

impl Actor {
    fn kind(&self) -> &'static str {
        match self {
            Actor::User { .. } => "user_actor",
            Actor::ServiceAccount(_) => "service_account_actor",
            Actor::Api(_) => "api_actor",
        }
    }

    fn id(&self) -> &str {
        match self {
            Actor::User { id, .. } => id,
            Actor::ServiceAccount(id) | Actor::Api(id) => id,
        }
    }

    fn json(&self) -> Value {
        match self {
            Actor::User {
                id,
                email,
                name,
                deleted,
            } => json!({ "type": "user_actor", "user_id": id, "email_address": email,
                         "name": name, "deleted": deleted }),
            Actor::ServiceAccount(id) => {
                json!({ "type": "service_account_actor", "service_account_id": id })
            }
            Actor::Api(id) => json!({ "type": "api_actor", "api_key_id": id }),
        }
    }
}

/// What a report needs from the organization, copied under the lock.
pub(crate) struct Input {
    seed: u64,
    org_id: String,
    enabled: bool,
    combos: Vec<(Combo, Actor)>,
}

impl Input {
    pub fn of(st: &OrgState) -> Input {
        let users: HashMap<&str, &super::state::User> =
            st.users.iter().map(|u| (u.id.as_str(), u)).collect();
        let keys: HashMap<&str, &super::state::ApiKey> =
            st.api_keys.iter().map(|k| (k.id.as_str(), k)).collect();
        // A member who left reads as deleted, without email or name (§8.6.1).
        let person = |id: &str| match users.get(id) {
            Some(u) => Actor::User {
                id: u.id.clone(),
                email: Some(u.email.clone()),
                name: Some(u.name.clone()),
                deleted: false,
            },
            None => Actor::User {
                id: id.to_owned(),
                email: None,
                name: Some("Deleted User".into()),
                deleted: true,
            },
        };
        let combos = st
            .combos
            .iter()
            .map(|c| {
                let actor = match (&c.api_key_id, &c.console_user) {
                    (Some(k), _) => match keys.get(k.as_str()).and_then(|k| k.principal.as_ref()) {
                        Some(Principal::User(u)) => person(u),
                        Some(Principal::ServiceAccount(s)) => Actor::ServiceAccount(s.clone()),
                        None => Actor::Api(k.clone()),
                    },
                    (None, Some(u)) => person(u),
                    (None, None) => Actor::Api(String::new()),
                };
                (c.clone(), actor)
            })
            .collect();
        Input {
            seed: st.seed,
            org_id: st.org_id.clone(),
            enabled: st.analytics,
            combos,
        }
    }
}

fn product(c: &Combo) -> &'static str {
    match (&c.api_key_id, c.service_tier) {
        (None, _) => "claude_console",
        (Some(_), "batch") => "message_batches_api",
        _ => "messages_api",
    }
}

/// The checked query.
struct Params {
    report: Report,
    /// The periods rows are computed for: each bucket, or the whole (hour-rounded) range.
    periods: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    width: Option<Width>,
    group_by: Vec<&'static str>,
    cost_type: bool,
    token_type: bool,
    limit: usize,
    desc: bool,
    order_by: &'static str,
    offset: usize,
    fingerprint: u64,
}

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn floor(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp().div_euclid(secs) * secs, 0)
        .single()
        .unwrap_or(t)
}

/// FNV-1a: binds a page token to its query.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn page_token(offset: usize, fingerprint: u64) -> String {
    format!(
        "page_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{offset}:{fingerprint:x}"))
    )
}

fn parse_page(raw: &str, fingerprint: u64) -> ApiResult<usize> {
    let bad = || ApiError::invalid(format!("page: invalid page token '{raw}'"));
    let bytes = raw
        .strip_prefix("page_")
        .and_then(|b| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b)
                .ok()
        })
        .ok_or_else(bad)?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (offset, bound) = text.split_once(':').ok_or_else(bad)?;
    if u64::from_str_radix(bound, 16).ok() != Some(fingerprint) {
        return Err(ApiError::invalid(
            "page: the page token belongs to a different query; send the same parameters with it",
        ));
    }
    offset.parse().map_err(|_| bad())
}

fn params(report: Report, q: &Query, now: DateTime<Utc>) -> ApiResult<Params> {
    let raw = q
        .get("starting_at")
        .ok_or_else(|| ApiError::invalid("starting_at: Field required"))?;
    let start = parse_time("starting_at", raw)?;
    if start < epoch() {
        return Err(ApiError::invalid(format!(
            "starting_at: must be no earlier than 2026-01-01T00:00:00Z, got '{raw}'"
        )));
    }
    if start < now - Duration::days(365) {
        return Err(ApiError::invalid(format!(
            "starting_at: must be within the last 365 days, got '{raw}'"
        )));
    }
    let width = match q.get("time_bucket_width") {
        None => None,
        Some("1m") => Some(Width::Minute),
        Some("1h") => Some(Width::Hour),
        Some("1d") => Some(Width::Day),
        Some(other) => return Err(bad_enum("time_bucket_width", other, &["1m", "1h", "1d"])),
    };
    let ending_at = q
        .get("ending_at")
        .map(|e| parse_time("ending_at", e))
        .transpose()?;
    if width.is_some() && ending_at.is_none() {
        return Err(ApiError::invalid(
            "ending_at: Field required when time_bucket_width is set",
        ));
    }
    let end = ending_at.unwrap_or_else(|| now.min(start + Duration::days(31)));
    if end <= start {
        return Err(ApiError::invalid("ending_at must be after starting_at"));
    }
    if end - start > Duration::days(31) {
        return Err(ApiError::invalid(
            "The range from starting_at to ending_at may span at most 31 days",
        ));
    }
    if width == Some(Width::Minute) && end - start > Duration::hours(24) {
        return Err(ApiError::invalid(
            "With time_bucket_width '1m' the range may span at most 24 hours",
        ));
    }
    let periods = match width {
        Some(w) => {
            // Buckets up to the one holding now; none from the future.
            let last = snap(now, w) + Duration::seconds(w.secs());
            let mut out = Vec::new();
            let mut t = snap(start, w);
            while t < end && t < last {
                out.push((t, t + Duration::seconds(w.secs())));
                t += Duration::seconds(w.secs());
            }
            out
        }
        // Without buckets the range covers whole hours.
        None => vec![(floor(start, 3600), floor(end, 3600))],
    };

    let mut allowed: Vec<&str> = GROUP_BY.to_vec();
    if report == Report::Cost {
        allowed.extend(COST_FAN_OUT);
    }
    let asked = q.enum_all("group_by", &allowed)?;
    let group_by: Vec<&'static str> = GROUP_BY
        .iter()
        .copied()
        .filter(|g| asked.iter().any(|a| a == g))
        .collect();
    if group_by.len() > MAX_GROUP_BY {
        return Err(ApiError::invalid(format!(
            "group_by: at most {MAX_GROUP_BY} dimensions (not counting cost_type and token_type), got {}",
            group_by.len()
        )));
    }
    let grouped = |d: &str| asked.iter().any(|a| a == d);
    if grouped("claude_tag_user_id")
        && (grouped("rbac_group_id") || !q.all("rbac_group_ids").is_empty())
    {
        return Err(ApiError::invalid(
            "claude_tag_user_id cannot be combined with rbac_group_id",
        ));
    }
    if q.bool("exclude_deleted_users", false)? && !grouped("actor") {
        return Err(ApiError::invalid(
            "exclude_deleted_users: requires group_by[]=actor",
        ));
    }
    let limit = q.limit(20, 1000)?;
    let desc = match q.get("order").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        other => return Err(bad_enum("order", other, &["asc", "desc"])),
    };
    let order_by = match q.get("order_by") {
        None => report.order_by()[0],
        Some(o) => report
            .order_by()
            .iter()
            .copied()
            .find(|x| *x == o)
            .ok_or_else(|| bad_enum("order_by", o, report.order_by()))?,
    };
    // Ordering by time needs buckets; without them it is the default.
    let order_by = if order_by == "time" && width.is_none() {
        report.order_by()[0]
    } else {
        order_by
    };
    let fingerprint = fnv(&format!("{report:?}?{}", q.canonical("page")));
    let offset = match q.get("page") {
        None => 0,
        Some(p) => parse_page(p, fingerprint)?,
    };
    Ok(Params {
        report,
        periods,
        width,
        group_by,
        cost_type: grouped("cost_type"),
        token_type: grouped("token_type"),
        limit,
        desc,
        order_by,
        offset,
        fingerprint,
    })
}

/// Whether a combo's usage passes the filters; errors for values outside an enum.
fn filter(q: &Query, org_id: &str) -> ApiResult<impl Fn(&Combo, &Actor) -> bool> {
    let workspaces = q.all("workspace_ids");
    // An empty entry also matches usage no key authenticated.
    let keys = q.all_with_empty("api_key_ids");
    let actor_ids = q.all("actor_ids");
    let actor_types = q.enum_all("actor_types", ACTOR_TYPES)?;
    let models = q.all("models");
    let tiers = q.enum_all("service_tiers", SERVICE_TIERS)?;
    let windows = q.enum_all("context_windows", CONTEXT_WINDOWS)?;
    let products = q.enum_all("products", PRODUCTS)?;
    let geos = q.enum_all("inference_geos", INFERENCE_GEOS)?;
    let speeds = q.enum_all("speeds", SPEEDS)?;
    q.enum_all("claude_tag_categories", TAG_CATEGORIES)?;
    let none_match = EMPTY_DIMENSIONS
        .iter()
        .chain(&["claude_tag_categories"])
        .any(|d| !q.all(d).is_empty());
    let orgs = q.all("organization_ids");
    let other_org = !orgs.is_empty() && !orgs.iter().any(|o| o == org_id);
    let exclude_deleted = q.bool("exclude_deleted_users", false)?;
    Ok(move |c: &Combo, a: &Actor| {
        let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        !none_match
            && !other_org
            && any(&workspaces, &c.workspace_id)
            && any(&keys, c.api_key_id.as_deref().unwrap_or(""))
            && any(&actor_ids, a.id())
            && any(&actor_types, a.kind())
            && any(&models, MODELS[c.model].id)
            && any(&tiers, c.service_tier)
            && any(&windows, c.context_window)
            && any(&products, product(c))
            && any(&geos, "global")
            && any(&speeds, "standard")
            && !(exclude_deleted && matches!(a, Actor::User { deleted: true, .. }))
    })
}

/// One dimension's value for a combo (null where this organization's usage has none).
fn dimension(dim: &str, c: &Combo, a: &Actor, org_id: &str) -> Value {
    match dim {
        "actor" => a.json(),
        "actor_type" => json!(a.kind()),
        "api_key_id" => json!(c.api_key_id),
        "context_window" => json!(c.context_window),
        "inference_geo" => json!("global"),
        "model" => json!(MODELS[c.model].id),
        "organization_id" => json!(org_id),
        "product" => json!(product(c)),
        "service_tier" => json!(c.service_tier),
        "speed" => json!("standard"),
        "workspace_id" => json!(c.workspace_id),
        _ => Value::Null,
    }
}

/// Usage of one combo over `[from, to)` (whole hours): days where they fit, else hours.
fn fields(
    calc: &mut UsageCalc,
    c: &Combo,
    width: Option<Width>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Fields {
    if let Some(w) = width {
        return calc.bucket(c, from, w);
    }
    let mut out = [0u64; 7];
    let mut t = from;
    while t < to {
        let (f, step) = if t.timestamp() % 86_400 == 0 && t + Duration::days(1) <= to {
            (calc.bucket(c, t, Width::Day), Duration::days(1))
        } else {
            (calc.bucket(c, t, Width::Hour), Duration::hours(1))
        };
        for (o, v) in out.iter_mut().zip(f) {
            *o += v;
        }
        t += step;
    }
    out
}

/// One row before it is written out: its period, group and measures.
struct Row {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    key: Vec<String>,
    group: Map<String, Value>,
    usage: Fields,
    amount: Decimal,
    /// Cost fan-out by (cost_type, token_type).
    parts: BTreeMap<(Option<&'static str>, Option<&'static str>), Decimal>,
}

fn usage_json(f: &Fields) -> Value {
    let total = f[UNCACHED] + f[CW_1H] + f[CW_5M] + f[CACHE_READ] + f[OUTPUT];
    json!({
        "uncached_input_tokens": f[UNCACHED],
        "cache_creation": {
            "ephemeral_1h_input_tokens": f[CW_1H],
            "ephemeral_5m_input_tokens": f[CW_5M],
        },
        "cache_read_input_tokens": f[CACHE_READ],
        "output_tokens": f[OUTPUT],
        "total_tokens": total,
        "server_tool_use": { "web_search_requests": f[WEB_SEARCH] },
        "requests": f[REQUESTS],
    })
}

fn cost_json(amount: Decimal, requests: Option<u64>) -> Value {
    // No negotiated discounts in the simulated organization: list price = price paid.
    json!({ "amount": cents(amount), "list_amount": cents(amount), "currency": "USD", "requests": requests })
}

impl Row {
    /// The value rows are ranked by.
    fn metric(&self, p: &Params) -> Decimal {
        let f = &self.usage;
        match (p.report, p.order_by) {
            (Report::Cost, _) => self.amount,
            (_, "output_tokens") => Decimal::from(f[OUTPUT]),
            (_, "requests") => Decimal::from(f[REQUESTS]),
            (_, "uncached_input_tokens") => Decimal::from(f[UNCACHED]),
            _ => Decimal::from(f[UNCACHED] + f[CW_1H] + f[CW_5M] + f[CACHE_READ] + f[OUTPUT]),
        }
    }

    fn write(self, p: &Params, out: &mut Vec<Value>) {
        let item = |group: &Map<String, Value>, measures: (&str, Value)| {
            json!({
                "starting_at": ts_secs(self.start),
                "ending_at": ts_secs(self.end),
                "group": group,
                measures.0: measures.1,
            })
        };
        match p.report {
            Report::Usage => out.push(item(&self.group, ("usage", usage_json(&self.usage)))),
            Report::Cost if !(p.cost_type || p.token_type) => out.push(item(
                &self.group,
                ("cost", cost_json(self.amount, Some(self.usage[REQUESTS]))),
            )),
            Report::Cost => {
                for ((cost_type, token_type), amount) in &self.parts {
                    let mut group = self.group.clone();
                    group.insert("cost_type".into(), json!(cost_type));
                    group.insert("token_type".into(), json!(token_type));
                    out.push(item(&group, ("cost", cost_json(*amount, None))));
                }
            }
        }
    }
}

/// GET /v1/organizations/analytics/{usage,cost}
pub(crate) fn report(
    input: &Input,
    report: Report,
    q: &Query,
    beta: &[String],
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    if !beta.iter().any(|b| b == ANALYTICS_BETA) {
        return Err(ApiError::invalid(format!(
            "anthropic-beta: this endpoint requires the '{ANALYTICS_BETA}' beta"
        )));
    }
    if !input.enabled {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "permission_error",
            "The Usage and Cost Analytics API is not enabled for this organization.",
        ));
    }
    let p = params(report, q, now)?;
    let keep = filter(q, &input.org_id)?;
    let mut all_dims: Vec<&str> = GROUP_BY.to_vec();
    if report == Report::Cost {
        all_dims.extend(COST_FAN_OUT);
    }
    let mut calc = UsageCalc::new(input.seed, now);
    let mut rows: Vec<Row> = Vec::new();
    for &(start, end) in &p.periods {
        let mut groups: BTreeMap<Vec<String>, Row> = BTreeMap::new();
        for (c, a) in input.combos.iter().filter(|(c, a)| keep(c, a)) {
            let f = fields(&mut calc, c, p.width, start, end);
            if is_idle(&f) {
                continue;
            }
            let values: Vec<Value> = p
                .group_by
                .iter()
                .map(|d| dimension(d, c, a, &input.org_id))
                .collect();
            let key: Vec<String> = values.iter().map(Value::to_string).collect();
            let row = groups.entry(key.clone()).or_insert_with(|| {
                let mut group: Map<String, Value> = all_dims
                    .iter()
                    .map(|d| ((*d).to_owned(), Value::Null))
                    .collect();
                for (d, v) in p.group_by.iter().zip(values) {
                    group.insert((*d).to_owned(), v);
                }
                Row {
                    start,
                    end,
                    key,
                    group,
                    usage: [0; 7],
                    amount: Decimal::ZERO,
                    parts: BTreeMap::new(),
                }
            });
            for (o, v) in row.usage.iter_mut().zip(f) {
                *o += v;
            }
            if report == Report::Cost {
                for line in cost_lines(c, &f) {
                    row.amount += line.amount;
                    let tokens = line.cost_type == "tokens";
                    // token_type alone: per-token rows (cost_type "tokens"), the rest combined
                    // in one row with both null (the docs do not say; UNCERTAIN).
                    let part = match (p.cost_type, p.token_type) {
                        (true, false) => (Some(line.cost_type), None),
                        (_, true) if tokens => (Some("tokens"), line.token_type),
                        (true, true) => (Some(line.cost_type), None),
                        _ => (None, None),
                    };
                    *row.parts.entry(part).or_default() += line.amount;
                }
            }
        }
        rows.extend(groups.into_values());
    }
    // Ranked by the metric (by bucket first when ordering by time, then the default metric
    // from the largest), ties in a fixed order so pages never overlap.
    let by_time = p.order_by == "time";
    let mut ranked: Vec<(Decimal, Row)> = rows.into_iter().map(|r| (r.metric(&p), r)).collect();
    ranked.sort_by(|(ma, a), (mb, b)| {
        let metric = if p.desc || by_time {
            mb.cmp(ma)
        } else {
            ma.cmp(mb)
        };
        let time = if by_time && p.desc {
            b.start.cmp(&a.start)
        } else {
            a.start.cmp(&b.start)
        };
        let ordered = if by_time {
            time.then(metric)
        } else {
            metric.then(time)
        };
        ordered.then_with(|| a.key.cmp(&b.key))
    });
    let rows: Vec<Row> = ranked.into_iter().map(|(_, r)| r).collect();
    let total = rows.len();
    let start = p.offset.min(total);
    let end = start.saturating_add(p.limit).min(total);
    let mut data = Vec::with_capacity(end - start);
    for row in rows.into_iter().skip(start).take(end - start) {
        row.write(&p, &mut data);
    }
    let next = (end < total).then(|| page_token(end, p.fingerprint));
    Ok(json!({
        "data": data,
        "has_more": next.is_some(),
        "next_page": next,
        "data_refreshed_at": ts_secs(floor(now, 60)),
    }))
}
