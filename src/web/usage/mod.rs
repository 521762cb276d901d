//! Usage (`/usage`), cost (`/cost`), Claude Code (`/claude-code`) and budgets (`/budgets`).
//!
//! Pages read the local usage store (`crate::usage_store`) after a throttled refresh of its
//! recent part, so reopening a page makes at most one upstream request. Team leads see only
//! their workspaces: the store rows (or the API query) are filtered before anything is summed.

pub mod chart;
mod claude_code;
mod cost;
mod csv;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::web::extract::Query;
use crate::web::routes::{Access::Needs, Routes};
use askama::Template;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use super::context::Layout;
use super::error::{AppError, AppResult};
use super::{AppState, Ctx};
use crate::anthropic::{BucketWidth, UsageGroupBy, UsageReportParams, UsageResult};
use crate::auth::Permission;
use crate::usage_store::{self as store, Dim, Kind, Measure, UsageFilter};

pub use cost::{budget_summaries, month_to_date, BudgetSummary};

/// `(bucket start, group value, value)` as read from the store or the API.
type SeriesRow = (DateTime<Utc>, String, i64);

/// The series that gathers every group beyond the largest ones.
pub const OTHER: &str = "Other";
/// Series drawn separately; the rest are summed into "Other".
const TOP_SERIES: usize = 8;
pub use crate::money::{dollars, group_digits, month_key};
pub use crate::usage_store::DEFAULT_WORKSPACE;

pub use crate::org::names::NO_KEY;

pub fn routes() -> Routes {
    use Permission::*;
    Routes::new()
        .get("/usage", Needs(ViewUsage), usage_page)
        .get("/usage.csv", Needs(ViewUsage), usage_csv)
        .get("/cost", Needs(ViewUsage), cost::page)
        .get("/cost.csv", Needs(ViewUsage), cost::csv_export)
        .get("/claude-code", Needs(ViewUsage), claude_code::page)
        .get("/budgets", Needs(ViewUsage), cost::budgets_page)
        .post("/budgets", Needs(ManageOrganization), cost::set_budget)
        .post(
            "/budgets/remove",
            Needs(ManageOrganization),
            cost::remove_budget,
        )
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

pub use crate::org::names::ReportNames as Names;

/// The names reports show, from the current snapshot.
pub fn names(state: &AppState) -> Arc<Names> {
    Names::of(&state.org.snapshot())
}

/// The workspaces (stored ids) this person may read: `None` = all.
pub fn scope(ctx: &Ctx, names: &Names) -> Option<Vec<String>> {
    ctx.workspace_scope()
        .map(|ids| ids.iter().map(|id| names.stored_ws(id)).collect())
}

/// Dollars from exact cents, rounded half-to-even only here, for display: `$1,234.57`.
/// Dollars with two decimals and no symbol or separators, for CSV.
pub fn dollars_plain(cents: Decimal) -> String {
    format!(
        "{:.2}",
        (cents / Decimal::from(100))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
    )
}

pub fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    format!("{}{}", if n < 0 { "-" } else { "" }, group_digits(&s))
}

/// Short numbers for chart axes ("1.2M").
pub fn compact(v: f64) -> String {
    // Up to two decimals, trailing zeros dropped: 1.25M stays 1.25M (not "1.2M"), 2M is "2M".
    let short = |x: f64, unit: &str| {
        let text = format!("{x:.2}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("{text}{unit}")
    };
    let a = v.abs();
    if a >= 1e9 {
        short(v / 1e9, "B")
    } else if a >= 1e6 {
        short(v / 1e6, "M")
    } else if a >= 1e3 {
        short(v / 1e3, "k")
    } else {
        short(v, "")
    }
}

/// The period a range is compared with: the one just before it, of the same length. A range
/// still running (today) by the hour is compared with the same hours of the previous period
/// (today until 14:00 with yesterday until 14:00), not with a whole period, which would read
/// "-88%" every morning. The flag says which.
pub fn comparison_window(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    width: &str,
) -> (DateTime<Utc>, DateTime<Utc>, bool) {
    let len = to - from;
    let through = store::floor(now, 3_600) + chrono::Duration::hours(1);
    if width == "1h" && through < to && through > from {
        (from - len, through - len, true)
    } else {
        (from - len, from, false)
    }
}

/// Change against the previous range, in words.
pub fn change(now: i128, before: i128) -> String {
    if before == 0 {
        return if now == 0 {
            "no change".into()
        } else {
            "new (nothing before)".into()
        };
    }
    let pct = Decimal::from_i128_with_scale((now - before) * 1000 / before, 1);
    let pct = pct.round_dp(1);
    if pct.is_sign_positive() && !pct.is_zero() {
        format!("+{pct}% vs previous period")
    } else {
        format!("{pct}% vs previous period")
    }
}

pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// A form's query string with some values replaced (links that keep the other choices).
pub fn link(path: &str, params: &BTreeMap<String, String>, set: &[(&str, &str)]) -> String {
    let mut p = params.clone();
    for (k, v) in set {
        if v.is_empty() {
            p.remove(*k);
        } else {
            p.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    let pairs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    crate::web::present::link(path, &pairs)
}

// ---------------------------------------------------------------------------------------------
// Ranges and resolution

pub struct Range {
    pub key: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub label: String,
}

pub const PRESETS: &[(&str, &str)] = &[
    ("today", "Today"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("custom", "Custom dates"),
];

pub fn parse_range(q: &BTreeMap<String, String>, now: DateTime<Utc>) -> Result<Range, String> {
    let today = now.date_naive();
    let tomorrow = day_start(today) + chrono::Duration::days(1);
    let has_dates = q.get("from").is_some_and(|s| !s.is_empty());
    let key = q
        .get("range")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| {
            if has_dates {
                "custom".into()
            } else {
                "7d".into()
            }
        });
    let days = |n: i64| day_start(today) - chrono::Duration::days(n - 1);
    let (from, to) = match key.as_str() {
        "today" => (day_start(today), tomorrow),
        "7d" => (days(7), tomorrow),
        "30d" => (days(30), tomorrow),
        "90d" => (days(90), tomorrow),
        "this_month" => (day_start(store::month_start(today)), tomorrow),
        "last_month" => {
            let this = store::month_start(today);
            let last = store::month_start(this.pred_opt().unwrap_or(this));
            (day_start(last), day_start(this))
        }
        "custom" => {
            let date = |name: &str| -> Result<NaiveDate, String> {
                crate::web::present::day(q.get(name).map(String::as_str).unwrap_or(""), name)
            };
            let (f, t) = (date("from")?, date("to")?);
            if t < f {
                return Err("The end date is before the start date.".into());
            }
            if (t - f).num_days() >= store::HISTORY_DAYS {
                return Err(format!(
                    "Choose at most {} days: the Admin API keeps about 90 days of usage.",
                    store::HISTORY_DAYS
                ));
            }
            (day_start(f), day_start(t) + chrono::Duration::days(1))
        }
        _ => return Err("Unknown range.".into()),
    };
    let label = PRESETS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, l)| (*l).to_owned())
        .unwrap_or_default();
    let last = (to - chrono::Duration::days(1)).date_naive();
    Ok(Range {
        label: format!(
            "{label}: {} to {} (UTC)",
            crate::labels::calendar_day(from.date_naive()),
            crate::labels::calendar_day(last)
        ),
        key,
        from,
        to,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub fn param(self) -> &'static str {
        match self {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }
    pub fn secs(self) -> i64 {
        match self {
            Resolution::Minute => 60,
            Resolution::Hour => 3600,
            Resolution::Day => 86_400,
        }
    }
    /// How a period is shown (ISO 8601, UTC).
    pub fn format(self, t: DateTime<Utc>) -> String {
        match self {
            Resolution::Day => t.format("%Y-%m-%d").to_string(),
            _ => t.format("%Y-%m-%dT%H:%MZ").to_string(),
        }
    }
    /// How a period reads in the table, in the form of every page's dates ("Nov 28, 2026" or
    /// "Nov 28, 2026, 14:00"); the column's heading says these are UTC periods.
    pub fn label(self, t: DateTime<Utc>) -> String {
        match self {
            Resolution::Day => crate::labels::calendar_day(t.date_naive()),
            _ => t.format("%b %-d, %Y, %H:%M").to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The usage page

/// The choices of one usage view, parsed and checked.
pub struct UsageQuery {
    pub params: BTreeMap<String, String>,
    pub range: Range,
    pub resolution: Resolution,
    pub group: Option<Dim>,
    pub measure: Measure,
    pub filter: UsageFilter,
    /// Set when a choice could not be honoured and was adjusted (shown above the results).
    pub adjusted: Option<String>,
}

impl UsageQuery {
    /// The stored series this query reads, at bucket width `width` (`1h` or `1d`).
    pub fn series<'a>(&'a self, width: &'a str) -> store::Series<'a> {
        store::Series {
            width,
            from: self.range.from,
            to: self.range.to,
            group: self.group,
            measure: self.measure,
            filter: &self.filter,
        }
    }
}

fn parse_usage(
    ctx: &Ctx,
    names: &Names,
    params: BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> AppResult<UsageQuery> {
    let range = parse_range(&params, now).map_err(AppError::BadRequest)?;
    let span = range.to - range.from;
    let mut adjusted = None;
    let resolution = match params.get("resolution").map(String::as_str) {
        Some("minute") if span <= chrono::Duration::days(1) => Resolution::Minute,
        // Keep the page and its filters: show hours and say why, rather than an error page.
        Some("minute") => {
            adjusted = Some(
                "Minute resolution is available for ranges of up to one day, so this range is shown by hour. Choose Today (or a one-day custom range) for minutes.".to_owned(),
            );
            Resolution::Hour
        }
        Some("hour")
            if range.from
                < now - chrono::Duration::days(i64::from(ctx.state.config.usage_hourly_days)) =>
        {
            return Err(AppError::BadRequest(format!(
                "Hourly detail is kept for the last {} days. Choose Day, or a range within them.",
                ctx.state.config.usage_hourly_days
            )))
        }
        Some("hour") => Resolution::Hour,
        Some("day") => Resolution::Day,
        _ if span <= chrono::Duration::days(1) => Resolution::Hour,
        _ => Resolution::Day,
    };
    let group = match params.get("group_by").map(String::as_str) {
        None | Some("") | Some("none") => None,
        Some(g) => {
            Some(Dim::parse(g).ok_or_else(|| AppError::BadRequest("Unknown grouping.".into()))?)
        }
    };
    let measure = match params.get("measure").map(String::as_str) {
        None | Some("") => Measure::Uncached,
        Some(m) => {
            Measure::parse(m).ok_or_else(|| AppError::BadRequest("Unknown measure.".into()))?
        }
    };
    let mut filter = UsageFilter {
        by: Vec::new(),
        workspaces: scope(ctx, names),
    };
    for dim in Dim::ALL {
        if let Some(v) = params.get(dim.param()) {
            if v.is_empty() {
                continue;
            }
            // "default" / "none" name the null values in links.
            let stored = match (dim, v.as_str()) {
                (Dim::Workspace, "default") => String::new(),
                (Dim::Workspace, id) => names.stored_ws(id),
                (Dim::ApiKey, "none") => String::new(),
                _ => v.clone(),
            };
            if dim == Dim::Workspace {
                if let Some(allowed) = &filter.workspaces {
                    if !allowed.contains(&stored) {
                        return Err(AppError::Forbidden);
                    }
                }
            }
            filter.by.push((dim, vec![stored]));
        }
    }
    Ok(UsageQuery {
        params,
        range,
        resolution,
        group,
        measure,
        filter,
        adjusted,
    })
}

/// The numbers of one usage view: periods × series, exactly as the chart and table show them.
#[derive(Clone)]
pub struct UsageData {
    pub periods: Vec<DateTime<Utc>>,
    /// Group values (stored ids) of the drawn series, `OTHER` last when present.
    pub keys: Vec<String>,
    /// `values[series][period]`.
    pub values: Vec<Vec<i64>>,
    pub totals: [i64; 5],
    /// `None` when the previous range is older than the API keeps.
    pub previous: Option<[i64; 5]>,
    /// `previous` covers only the hours of it that have passed in this range (a range still
    /// running); see [`comparison_window`].
    pub same_hours: bool,
    /// Set when the refresh failed and stored data is shown.
    pub stale: Option<String>,
}

fn measure_of(r: &UsageResult, m: Measure) -> i64 {
    (match m {
        Measure::Uncached => r.uncached_input_tokens,
        Measure::Output => r.output_tokens,
        Measure::CacheRead => r.cache_read_input_tokens,
        Measure::CacheWrite => {
            r.cache_creation.ephemeral_5m_input_tokens + r.cache_creation.ephemeral_1h_input_tokens
        }
        Measure::WebSearch => r.server_tool_use.web_search_requests,
    }) as i64
}

fn periods_of(q: &UsageQuery, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let step = chrono::Duration::seconds(q.resolution.secs());
    // Nothing after the bucket that holds "now".
    let end = q
        .range
        .to
        .min(store::floor(now, q.resolution.secs()) + step);
    let mut out = Vec::new();
    let mut t = q.range.from;
    while t < end {
        out.push(t);
        t += step;
    }
    out
}

/// Refreshes the store's recent part (at most one request a minute) and reads the view.
pub async fn load_usage(
    state: &AppState,
    names: &Names,
    q: &UsageQuery,
    now: DateTime<Utc>,
) -> AppResult<UsageData> {
    let kind = if q.resolution == Resolution::Day {
        Kind::UsageDay
    } else {
        Kind::UsageHour
    };
    let stale = refresh_or_stale(state, kind, now).await?;
    let width = if kind == Kind::UsageDay { "1d" } else { "1h" };
    let periods = periods_of(q, now);
    if q.resolution == Resolution::Minute {
        let mut data = read_usage(state, names, q, width, periods, now).await?;
        data.stale = stale;
        return Ok(data);
    }
    // Stored views are computed once per store version: the aggregation reads thousands of
    // rows, the lookup one.
    let key = format!(
        "usage {width} {} {:?} {:?} {:?} {:?} {:?}",
        store::floor(now, 86_400),
        periods.first().zip(periods.last()),
        q.range.to,
        q.group,
        q.measure,
        q.filter
    );
    let data = state
        .reports
        .get(&state.usage, key, || {
            read_usage(state, names, q, width, periods, now)
        })
        .await?;
    Ok(UsageData {
        stale,
        ..(*data).clone()
    })
}

/// The view's numbers from the store (or, per minute, from the API).
async fn read_usage(
    state: &AppState,
    names: &Names,
    q: &UsageQuery,
    width: &str,
    periods: Vec<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> AppResult<UsageData> {
    let (rows, by_group): (Vec<SeriesRow>, Vec<(String, i64)>) =
        if q.resolution == Resolution::Minute {
            let rows = minute_rows(state, names, q).await?;
            let mut sums: BTreeMap<String, i64> = BTreeMap::new();
            for (_, g, v) in &rows {
                *sums.entry(g.clone()).or_default() += v;
            }
            let mut by: Vec<(String, i64)> = sums.into_iter().collect();
            by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            (rows, by)
        } else {
            let series = q.series(width);
            let rows = state.usage.usage_series(&series).await?;
            let by = state.usage.group_totals(&series).await?;
            (rows, by)
        };
    let keys = series_keys(&by_group);
    let index: HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let pidx: HashMap<DateTime<Utc>, usize> =
        periods.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut values = vec![vec![0i64; periods.len()]; keys.len()];
    for (t, g, v) in rows {
        let s = index.get(g.as_str()).or_else(|| index.get(OTHER)).copied();
        if let (Some(s), Some(&p)) = (s, pidx.get(&t)) {
            values[s][p] += v;
        }
    }
    let totals = state
        .usage
        .usage_totals(width, q.range.from, q.range.to, &q.filter)
        .await?;
    // Comparing with days the API no longer keeps would show made-up growth.
    let kept_since = store::floor(now, 86_400) - chrono::Duration::days(store::API_HISTORY_DAYS);
    let (before_from, before_to, same_hours) =
        comparison_window(q.range.from, q.range.to, now, width);
    let previous = if before_from >= kept_since {
        Some(
            state
                .usage
                .usage_totals(width, before_from, before_to, &q.filter)
                .await?,
        )
    } else {
        None
    };
    Ok(UsageData {
        periods,
        keys,
        values,
        totals,
        previous,
        same_hours,
        stale: None,
    })
}

/// The largest groups, then "Other" for the rest.
pub fn series_keys(by_group: &[(String, i64)]) -> Vec<String> {
    let mut keys: Vec<String> = by_group
        .iter()
        .take(TOP_SERIES)
        .map(|(k, _)| k.clone())
        .collect();
    if by_group.len() > TOP_SERIES {
        keys.push(OTHER.to_owned());
    }
    keys
}

/// Refreshes one report; on failure, pages fall back to stored data with a warning (or fail
/// when nothing is stored yet). See `service::usage::refresh_or_stale`.
pub async fn refresh_or_stale(
    state: &AppState,
    kind: Kind,
    now: DateTime<Utc>,
) -> AppResult<Option<String>> {
    Ok(crate::service::usage::refresh_or_stale(state, kind, now).await?)
}

/// Minute buckets come straight from the API (ranges of at most a day: one request).
async fn minute_rows(state: &AppState, names: &Names, q: &UsageQuery) -> AppResult<Vec<SeriesRow>> {
    let mut p = UsageReportParams::new(q.range.from);
    p.ending_at = Some(q.range.to);
    p.bucket_width = Some(BucketWidth::Minute);
    p.limit = Some(1440);
    if let Some(g) = q.group {
        p.group_by = vec![match g {
            Dim::Model => UsageGroupBy::Model,
            Dim::Workspace => UsageGroupBy::WorkspaceId,
            Dim::ApiKey => UsageGroupBy::ApiKeyId,
            Dim::ServiceTier => UsageGroupBy::ServiceTier,
            Dim::ContextWindow => UsageGroupBy::ContextWindow,
        }];
    }
    for (dim, values) in &q.filter.by {
        let v = values.clone();
        match dim {
            Dim::Model => p.models = v,
            Dim::Workspace => p.workspace_ids = v.iter().filter_map(|w| names.real_ws(w)).collect(),
            // The API cannot filter on "no key"; that filter is applied below.
            Dim::ApiKey => p.api_key_ids = v.into_iter().filter(|k| !k.is_empty()).collect(),
            Dim::ServiceTier => p.service_tiers = v,
            Dim::ContextWindow => p.context_window = v,
        }
    }
    if let Some(scope) = &q.filter.workspaces {
        let real: Vec<String> = scope.iter().filter_map(|w| names.real_ws(w)).collect();
        if real.is_empty() {
            return Ok(Vec::new());
        }
        p.workspace_ids = if p.workspace_ids.is_empty() {
            real
        } else {
            p.workspace_ids
                .into_iter()
                .filter(|w| real.contains(w))
                .collect()
        };
    }
    let no_key_only = q
        .filter
        .by
        .iter()
        .any(|(d, v)| *d == Dim::ApiKey && v.iter().any(String::is_empty));
    if no_key_only {
        p.group_by.push(UsageGroupBy::ApiKeyId);
    }
    let buckets = crate::service::usage::minute_buckets(state, &p).await?;
    let mut out = Vec::new();
    for b in buckets {
        for r in b.results {
            if no_key_only && r.api_key_id.is_some() {
                continue;
            }
            let g = match q.group {
                None => String::new(),
                Some(Dim::Model) => r.model.clone().unwrap_or_default(),
                Some(Dim::Workspace) => r.workspace_id.clone().unwrap_or_default(),
                Some(Dim::ApiKey) => r.api_key_id.clone().unwrap_or_default(),
                Some(Dim::ServiceTier) => r.service_tier.clone().unwrap_or_default(),
                Some(Dim::ContextWindow) => r.context_window.clone().unwrap_or_default(),
            };
            out.push((b.starting_at, g, measure_of(&r, q.measure)));
        }
    }
    Ok(out)
}

pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct FilterView {
    pub name: &'static str,
    pub label: &'static str,
    pub options: Vec<Opt>,
    /// Too many values for a list (every key of a large organization): a field for one id
    /// instead, holding the current choice.
    pub typed: Option<String>,
}

pub struct TotalView {
    pub label: &'static str,
    pub value: String,
    pub change: String,
}

pub struct HeaderCell {
    pub label: String,
    pub href: String,
    pub sorted: &'static str,
}

pub struct TableRow {
    pub period: String,
    pub cells: Vec<String>,
    /// `None` with a single series, whose own column is already the total.
    pub total: Option<String>,
}

/// What `usage/_results.html` shows.
pub struct UsageView {
    pub range_label: String,
    pub measure_label: &'static str,
    pub group_label: &'static str,
    pub totals: Vec<TotalView>,
    pub header: Vec<HeaderCell>,
    pub rows: Vec<TableRow>,
    pub csv_href: String,
    pub stale: Option<String>,
    pub names_error: Option<String>,
}

#[derive(Template)]
#[template(path = "usage/index.html")]
struct UsagePage {
    layout: Layout,
    v: UsageView,
    chart: chart::ChartView,
    presets: Vec<Opt>,
    resolutions: Vec<Opt>,
    groups: Vec<Opt>,
    measures: Vec<Opt>,
    filters: Vec<FilterView>,
    from: String,
    to: String,
}

#[derive(Template)]
#[template(path = "usage/_results.html")]
struct UsageResults {
    v: UsageView,
    chart: chart::ChartView,
}

fn opts(items: impl IntoIterator<Item = (String, String)>, current: &str) -> Vec<Opt> {
    items
        .into_iter()
        .map(|(value, label)| Opt {
            selected: value == current,
            value,
            label,
        })
        .collect()
}

/// The table rows in the requested order. `sort` is `period`, `total` or `s<N>`.
fn sorted_rows(q: &UsageQuery, data: &UsageData) -> (Vec<usize>, String, bool) {
    let sort = q
        .params
        .get("sort")
        .cloned()
        .unwrap_or_else(|| "period".into());
    let desc = q.params.get("dir").is_some_and(|d| d == "desc");
    let total = |p: usize| -> i64 { data.values.iter().map(|s| s[p]).sum() };
    let mut order: Vec<usize> = (0..data.periods.len()).collect();
    match sort.as_str() {
        "total" => order.sort_by_key(|&p| total(p)),
        s if s.starts_with('s') => {
            if let Some(i) = s[1..]
                .parse::<usize>()
                .ok()
                .filter(|i| *i < data.values.len())
            {
                order.sort_by_key(|&p| data.values[i][p]);
            }
        }
        _ => {}
    }
    if desc {
        order.reverse();
    }
    (order, sort, desc)
}

async fn usage_page(
    ctx: Ctx,
    Query(params): Query<BTreeMap<String, String>>,
) -> AppResult<Response> {
    ctx.require(Permission::ViewUsage).await?;
    if params.get("format").is_some_and(|f| f == "csv") {
        return csv_response(&ctx, params).await;
    }
    let now = ctx.state.clock.now();
    let names = names(&ctx.state);
    let q = parse_usage(&ctx, &names, params, now)?;
    let data = load_usage(&ctx.state, &names, &q, now).await?;

    let labels: Vec<String> = data
        .keys
        .iter()
        .map(|k| {
            if k == OTHER {
                OTHER.to_owned()
            } else {
                names.label(q.group, k)
            }
        })
        .collect();
    let period_labels: Vec<String> = data
        .periods
        .iter()
        .map(|p| q.resolution.format(*p))
        .collect();
    // Series that are workspaces are drawn in the workspace's colour.
    let snapshot = ctx.state.org.snapshot();
    let series: Vec<chart::Series> = labels
        .iter()
        .zip(&data.values)
        .zip(&data.keys)
        .map(|((name, vals), key)| chart::Series {
            name: name.clone(),
            values: vals.iter().map(|v| *v as f64).collect(),
            labels: vals.iter().map(|v| thousands(*v)).collect(),
            color: crate::web::workspaces::chart_color(
                snapshot.workspaces.iter().find(|w| &w.id == key),
            ),
        })
        .collect();
    let mut chart = chart::build(
        &format!(
            "{} by {}",
            q.measure.label(),
            group_label(q.group).to_lowercase()
        ),
        &period_labels,
        &series,
        compact,
    );
    chart.unit = if q.measure == Measure::WebSearch {
        "requests".into()
    } else {
        "tokens".into()
    };

    let (order, sort, desc) = sorted_rows(&q, &data);
    let header_cell = |key: String, label: String| {
        let is = sort == key;
        let next_dir = if is && !desc { "desc" } else { "asc" };
        HeaderCell {
            href: link("/usage", &q.params, &[("sort", &key), ("dir", next_dir)]),
            sorted: match (is, desc) {
                (true, true) => "descending",
                (true, false) => "ascending",
                _ => "none",
            },
            label,
        }
    };
    let mut header = vec![header_cell("period".into(), "Period (UTC)".into())];
    for (i, l) in labels.iter().enumerate() {
        header.push(header_cell(format!("s{i}"), l.clone()));
    }
    let several = labels.len() > 1;
    if several {
        header.push(header_cell("total".into(), "Total".into()));
    }
    let rows = order
        .iter()
        .map(|&p| TableRow {
            period: q.resolution.label(data.periods[p]),
            cells: data.values.iter().map(|s| thousands(s[p])).collect(),
            total: several.then(|| thousands(data.values.iter().map(|s| s[p]).sum())),
        })
        .collect();
    let totals = Measure::ALL
        .iter()
        .enumerate()
        .map(|(i, m)| TotalView {
            label: m.label(),
            value: thousands(data.totals[i]),
            change: match data.previous {
                Some(p) if data.same_hours => change(data.totals[i] as i128, p[i] as i128).replace(
                    "vs previous period",
                    "vs the same hours of the previous period",
                ),
                Some(p) => change(data.totals[i] as i128, p[i] as i128),
                None => {
                    "no comparison: the previous period is older than the Admin API keeps".into()
                }
            },
        })
        .collect();
    let v = UsageView {
        range_label: q.range.label.clone(),
        measure_label: q.measure.label(),
        group_label: group_label(q.group),
        totals,
        header,
        rows,
        csv_href: link("/usage.csv", &q.params, &[("sort", ""), ("dir", "")]),
        stale: data.stale.or(q.adjusted.clone()),
        names_error: names.error.clone(),
    };
    if ctx.client.htmx {
        let page = UsageResults { v, chart };
        return crate::web::page::render(axum::http::StatusCode::OK, &page);
    }

    let filters = filter_views(&ctx, &names, &q).await?;
    let page = UsagePage {
        layout: ctx.layout("Usage", "usage").await,
        presets: opts(
            PRESETS.iter().map(|(k, l)| ((*k).into(), (*l).into())),
            &q.range.key,
        ),
        resolutions: opts(
            [
                ("minute", "Minute (up to one day)"),
                ("hour", "Hour"),
                ("day", "Day"),
            ]
            .map(|(k, l)| (k.to_owned(), l.to_owned())),
            q.resolution.param(),
        ),
        groups: opts(
            std::iter::once(("none".to_owned(), "Nothing (one total)".to_owned())).chain(
                Dim::ALL
                    .iter()
                    .map(|d| (d.param().to_owned(), d.label().to_owned())),
            ),
            q.group.map_or("none", Dim::param),
        ),
        measures: opts(
            Measure::ALL
                .iter()
                .map(|m| (m.param().to_owned(), m.label().to_owned())),
            q.measure.param(),
        ),
        filters,
        from: q.range.from.date_naive().to_string(),
        to: (q.range.to - chrono::Duration::days(1))
            .date_naive()
            .to_string(),
        v,
        chart,
    };
    crate::web::page::render(axum::http::StatusCode::OK, &page)
}

fn group_label(g: Option<Dim>) -> &'static str {
    g.map_or("Total", Dim::label)
}

/// Filter menus, limited to what this person may see.
async fn filter_views(ctx: &Ctx, names: &Names, q: &UsageQuery) -> AppResult<Vec<FilterView>> {
    let scope = q.filter.workspaces.clone();
    let visible = |ws: &str| scope.as_ref().is_none_or(|s| s.iter().any(|x| x == ws));
    let mut out = Vec::new();
    for dim in Dim::ALL {
        let current = q.params.get(dim.param()).cloned().unwrap_or_default();
        let mut options = vec![Opt {
            value: String::new(),
            label: "All".into(),
            selected: current.is_empty(),
        }];
        let stored = crate::service::usage::dim_values(&ctx.state, dim).await?;
        for v in stored.iter() {
            let (value, ok) = match dim {
                Dim::Workspace => (
                    if v.is_empty() {
                        "default".to_owned()
                    } else {
                        v.clone()
                    },
                    visible(v),
                ),
                Dim::ApiKey => (
                    if v.is_empty() {
                        "none".to_owned()
                    } else {
                        v.clone()
                    },
                    // A key whose workspace is unknown is shown only to people who see everything.
                    scope.is_none()
                        || (!v.is_empty() && names.key_workspace(v).is_some_and(|w| visible(&w))),
                ),
                _ => (v.clone(), true),
            };
            if !ok {
                continue;
            }
            options.push(Opt {
                selected: value == current,
                label: names.label(Some(dim), v),
                value,
            });
        }
        let typed = (options.len() > super::present::MOST_CHOICES + 1).then(|| current.clone());
        if typed.is_some() {
            options.clear();
        }
        out.push(FilterView {
            name: dim.param(),
            label: dim.label(),
            options,
            typed,
        });
    }
    Ok(out)
}

async fn usage_csv(
    ctx: Ctx,
    Query(params): Query<BTreeMap<String, String>>,
) -> AppResult<Response> {
    ctx.require(Permission::ViewUsage).await?;
    csv_response(&ctx, params).await
}

async fn csv_response(ctx: &Ctx, params: BTreeMap<String, String>) -> AppResult<Response> {
    let now = ctx.state.clock.now();
    let names = names(&ctx.state);
    let q = parse_usage(ctx, &names, params, now)?;
    csv::usage(&ctx.state, &names, q, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_round_half_to_even_only_at_display() {
        assert_eq!(dollars(Decimal::new(12345, 1)), "$12.34"); // 1234.5 cents = $12.345
        assert_eq!(dollars(Decimal::new(12355, 1)), "$12.36");
        assert_eq!(dollars(Decimal::new(12250, 3)), "$0.12"); // 12.25 cents = $0.1225
        assert_eq!(dollars(Decimal::from(123_456_789)), "$1,234,567.89");
        assert_eq!(dollars(Decimal::ZERO), "$0.00");
    }

    #[test]
    fn a_running_day_is_compared_with_the_same_hours_of_the_day_before() {
        let at = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap();
        // Today at 14:20, by the hour: today 00:00-15:00 against yesterday 00:00-15:00.
        assert_eq!(
            comparison_window(at(3, 0, 0), at(4, 0, 0), at(3, 14, 20), "1h"),
            (at(2, 0, 0), at(2, 15, 0), true)
        );
        // A range that is over compares whole periods.
        assert_eq!(
            comparison_window(at(1, 0, 0), at(3, 0, 0), at(3, 14, 20), "1h"),
            (
                Utc.with_ymd_and_hms(2026, 11, 29, 0, 0, 0).unwrap(),
                at(1, 0, 0),
                false
            )
        );
        // By the day, whole periods too.
        assert!(!comparison_window(at(3, 0, 0), at(4, 0, 0), at(3, 14, 20), "1d").2);
    }

    #[test]
    fn change_is_stated_against_the_previous_period() {
        assert_eq!(change(150, 100), "+50.0% vs previous period");
        assert_eq!(change(50, 100), "-50.0% vs previous period");
        assert_eq!(change(0, 0), "no change");
    }
}
