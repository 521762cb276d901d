//! Usage (`/usage`), cost (`/cost`), Claude Code (`/claude-code`) and budgets (`/budgets`).
//!
//! Pages read the local usage store (`crate::usage_store`) after a throttled refresh of its
//! recent part, so reopening a page makes at most one upstream request. Team leads see only
//! their workspaces: the store rows (or the API query) are filtered before anything is summed.

pub mod chart;
mod claude_code;
mod cost;
mod csv;

use std::collections::BTreeMap;
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
use crate::auth::Permission;
pub use crate::service::usage_view::{comparison_window, series_keys, Resolution, OTHER};
use crate::service::usage_view::{load, UsageData, UsageSpec};
use crate::usage_store::{self as store, Dim, Kind, Measure, UsageFilter};

pub use cost::{budget_summaries, month_to_date, BudgetSummary};

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

// ---------------------------------------------------------------------------------------------
// The usage page

/// The choices of one usage view, parsed and checked: what it reads (`spec`, which the
/// query stands for), and how the page shows them.
pub struct UsageQuery {
    pub params: BTreeMap<String, String>,
    pub range: Range,
    pub spec: UsageSpec,
    /// Set when a choice could not be honoured and was adjusted (shown above the results).
    pub adjusted: Option<String>,
}

impl std::ops::Deref for UsageQuery {
    type Target = UsageSpec;
    fn deref(&self) -> &UsageSpec {
        &self.spec
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
        _ => Resolution::default_for(span),
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
        spec: UsageSpec {
            from: range.from,
            to: range.to,
            resolution,
            group,
            measure,
            filter,
        },
        range,
        adjusted,
    })
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
    let data = load(&ctx.state, &names, &q, now).await?;

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
    fn the_page_with_no_choices_reads_the_view_the_usage_job_builds_ahead() {
        // The job warms `UsageSpec::default_at`; a page with no choices must ask for exactly
        // that, or its first view after each round builds it again.
        for now in [
            Utc.with_ymd_and_hms(2026, 12, 3, 14, 20, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        ] {
            let range = parse_range(&BTreeMap::new(), now).unwrap();
            let default = UsageSpec::default_at(now, None);
            assert_eq!((range.from, range.to), (default.from, default.to));
            assert_eq!(
                Resolution::default_for(range.to - range.from),
                default.resolution
            );
            assert_eq!(default.resolution, Resolution::Day);
            assert_eq!((default.group, default.measure), (None, Measure::Uncached));
        }
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
